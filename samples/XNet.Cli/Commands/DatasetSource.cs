using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet.Data;

namespace XNet.Cli.Commands;

/// <summary>
/// Where <c>xnet train</c> and <c>xnet evaluate</c> read images from: a CIFAR-10/100 binary folder, an idx folder
/// (MNIST, Fashion-MNIST), an image folder, or the embedded Fashion-MNIST subset when no path is given.
/// </summary>
internal static class DatasetSource
{
    /// <summary>The embedded Fashion-MNIST subset copied next to <c>xnet</c>.</summary>
    public static string Embedded => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    /// <summary>Loads one split ("train" or "test"); image folders are read at <paramref name="imageShape"/>.</summary>
    public static ImageDataset Load(MLContext mlContext, string? path, string split, ImageShape imageShape, bool skipUnreadable) =>
        ImageDatasets.Load(mlContext, path ?? Embedded, split, new ImageFolderOptions
        {
            Height = imageShape.Height,
            Width = imageShape.Width,
            Channels = imageShape.Channels,
            SkipUnreadable = skipUnreadable,
        });
}
