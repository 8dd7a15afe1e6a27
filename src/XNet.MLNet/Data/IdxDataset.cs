using Microsoft.ML;
using XNet.Architectures;

namespace XNet.MLNet.Data;

/// <summary>
/// Loads an idx image file and its label file (MNIST, Fashion-MNIST) as an IDataView with a key-typed
/// <c>Label</c> column (with the class names as key values) and a <c>Features</c> column of raw pixel values
/// 0-255, typed <c>Vector&lt;Single, 1, H, W&gt;</c>, the layout ML.NET's ExtractPixels produces.
/// </summary>
public static class IdxDataset
{
    /// <summary>Loads the two files as an IDataView.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imagesPath">idx3 file of images (gzip optional).</param>
    /// <param name="labelsPath">idx1 file of labels (gzip optional).</param>
    /// <param name="classNames">Names of the classes, label 0 first; null gives "0".."9" style names for the labels seen.</param>
    /// <exception cref="InvalidDataException">When the files disagree or a label has no class name; the message names the file.</exception>
    public static IDataView Load(MLContext mlContext, string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var (images, labels, names) = Read(imagesPath, labelsPath, classNames);
        var shape = new ImageShape(1, images.Dimensions[1], images.Dimensions[2]);
        var rows = new ReadOnlyMemory<byte>[labels.Data.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = images.Data.AsMemory(i * shape.Size, shape.Size);
        }

        return new ByteImageDataView(shape, names, rows, Array.ConvertAll(labels.Data, b => (uint)b));
    }

    private static (IdxFile Images, IdxFile Labels, IReadOnlyList<string> Names) Read(
        string imagesPath, string labelsPath, IReadOnlyList<string>? classNames)
    {
        var images = IdxFile.Read(imagesPath, expectedRank: 3);
        var labels = IdxFile.Read(labelsPath, expectedRank: 1);
        if (images.Dimensions[0] != labels.Dimensions[0])
        {
            throw new InvalidDataException(
                $"idx files disagree: '{imagesPath}' holds {images.Dimensions[0]} images, '{labelsPath}' holds {labels.Dimensions[0]} labels.");
        }

        if (images.Dimensions.Any(d => d == 0))
        {
            throw new InvalidDataException($"idx file '{imagesPath}' holds no images ({string.Join(" x ", images.Dimensions)}).");
        }

        int maxLabel = labels.Data.Max();
        var names = classNames ?? Enumerable.Range(0, maxLabel + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (maxLabel >= names.Count)
        {
            throw new InvalidDataException(
                $"idx file '{labelsPath}' has label {maxLabel}, but only {names.Count} class names were given.");
        }

        return (images, labels, names);
    }
}
