using Microsoft.ML;
using XNet.Architectures;

namespace XNet.MLNet.Data;

/// <summary>Which of the two CIFAR datasets a folder holds.</summary>
public enum CifarVariant
{
    /// <summary>CIFAR-10, binary version (<c>cifar-10-batches-bin</c>).</summary>
    Cifar10,

    /// <summary>CIFAR-100, binary version (<c>cifar-100-binary</c>), read with its 100 fine labels.</summary>
    Cifar100,
}

/// <summary>
/// Reads the binary versions of CIFAR-10 and CIFAR-100 as an IDataView in the schema <see cref="IdxDataset"/> produces:
/// a key-typed <c>Label</c> (KeyValues: the class names) and <c>Features</c> typed <c>Vector&lt;Single, 3, 32, 32&gt;</c>
/// of raw 0-255 values, planar (R, G, B), which is how the files store them.
/// </summary>
/// <remarks>
/// CIFAR-10 (<c>cifar-10-batches-bin</c>): <c>data_batch_1.bin</c> .. <c>data_batch_5.bin</c> form the train split,
/// <c>test_batch.bin</c> the test split; a record is 1 label byte and 3072 pixel bytes; class names come from
/// <c>batches.meta.txt</c>. CIFAR-100 (<c>cifar-100-binary</c>): <c>train.bin</c> and <c>test.bin</c>; a record is a
/// coarse label byte, a fine label byte and 3072 pixel bytes; the fine label is used, with the names in
/// <c>fine_label_names.txt</c>. The split is read into memory as bytes (at most 150 MB).
/// </remarks>
public static class CifarDataset
{
    /// <summary>The image shape of both datasets: 3 x 32 x 32.</summary>
    public static ImageShape Shape { get; } = new(3, 32, 32);

    private const int PixelBytes = 3 * 32 * 32;

    /// <summary>Loads a split as an IDataView.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="directory">A <c>cifar-10-batches-bin</c> or <c>cifar-100-binary</c> folder, or a folder containing one.</param>
    /// <param name="split"><c>train</c> or <c>test</c>.</param>
    /// <exception cref="DirectoryNotFoundException">When the folder does not exist or holds neither layout.</exception>
    /// <exception cref="FileNotFoundException">When a file of the split or the class names file is missing; the message names it.</exception>
    /// <exception cref="InvalidDataException">When a file is truncated or has a label out of range; the message names it.</exception>
    /// <exception cref="ArgumentException">When the split is not train or test.</exception>
    public static IDataView Load(MLContext mlContext, string directory, string split)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return Read(directory, split, out _);
    }

    /// <summary>Finds the CIFAR layout in <paramref name="path"/> or in one of its subfolders named as the archives unpack.</summary>
    /// <param name="path">A folder.</param>
    /// <param name="variant">The dataset found.</param>
    /// <param name="directory">The folder holding its files.</param>
    /// <returns>Whether a layout was found.</returns>
    public static bool TryLocate(string path, out CifarVariant variant, out string directory)
    {
        foreach (var candidate in new[] { path, Path.Combine(path, "cifar-10-batches-bin"), Path.Combine(path, "cifar-100-binary") })
        {
            if (File.Exists(Path.Combine(candidate, "batches.meta.txt")) || File.Exists(Path.Combine(candidate, "test_batch.bin"))
                || File.Exists(Path.Combine(candidate, "data_batch_1.bin")))
            {
                (variant, directory) = (CifarVariant.Cifar10, candidate);
                return true;
            }

            if (File.Exists(Path.Combine(candidate, "fine_label_names.txt")) || File.Exists(Path.Combine(candidate, "train.bin"))
                || File.Exists(Path.Combine(candidate, "test.bin")))
            {
                (variant, directory) = (CifarVariant.Cifar100, candidate);
                return true;
            }
        }

        (variant, directory) = (CifarVariant.Cifar10, path);
        return false;
    }

    /// <summary>The class names of a CIFAR folder (from <c>batches.meta.txt</c> or <c>fine_label_names.txt</c>).</summary>
    /// <exception cref="FileNotFoundException">When the names file is missing.</exception>
    /// <exception cref="InvalidDataException">When it holds fewer than 2 names.</exception>
    public static IReadOnlyList<string> ClassNames(string directory, CifarVariant variant)
    {
        string path = Path.Combine(directory, NamesFile(variant));
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"CIFAR class names file '{path}' does not exist.", path);
        }

        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length >= 2 ? names
            : throw new InvalidDataException($"CIFAR class names file '{path}' holds {names.Length} names; expected one per line, at least 2.");
    }

    /// <summary>The data files of a split, in reading order.</summary>
    /// <exception cref="ArgumentException">When the split is not train or test.</exception>
    public static IReadOnlyList<string> Files(string directory, CifarVariant variant, string split)
    {
        string normalized = NormalizeSplit(split);
        return (variant, normalized) switch
        {
            (CifarVariant.Cifar10, "train") => Enumerable.Range(1, 5).Select(i => Path.Combine(directory, $"data_batch_{i}.bin")).ToArray(),
            (CifarVariant.Cifar10, _) => new[] { Path.Combine(directory, "test_batch.bin") },
            (_, "train") => new[] { Path.Combine(directory, "train.bin") },
            _ => new[] { Path.Combine(directory, "test.bin") },
        };
    }

    internal static ByteImageDataView Read(string directory, string split, out CifarVariant variant)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"CIFAR folder '{directory}' does not exist.");
        }

        if (!TryLocate(directory, out variant, out string found))
        {
            throw new DirectoryNotFoundException(
                $"Folder '{directory}' holds neither CIFAR-10 binary files (data_batch_1.bin .. test_batch.bin, batches.meta.txt) " +
                "nor CIFAR-100 binary files (train.bin, test.bin, fine_label_names.txt), nor a cifar-10-batches-bin or cifar-100-binary folder.");
        }

        var files = Files(found, variant, split);
        var names = ClassNames(found, variant);
        int labelOffset = variant == CifarVariant.Cifar10 ? 0 : 1; // CIFAR-100: coarse label, then fine label
        int recordSize = labelOffset + 1 + PixelBytes;

        long total = 0;
        foreach (string file in files)
        {
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"CIFAR file '{file}' does not exist (needed for the '{split}' split).", file);
            }

            long length = new FileInfo(file).Length;
            if (length == 0 || length % recordSize != 0)
            {
                throw new InvalidDataException(
                    $"CIFAR file '{file}' has {length} bytes, not a positive multiple of the {recordSize}-byte record " +
                    $"({(labelOffset == 0 ? "1 label byte" : "coarse and fine label bytes")} + {PixelBytes} pixel bytes): it is truncated or not a " +
                    $"{(variant == CifarVariant.Cifar10 ? "CIFAR-10" : "CIFAR-100")} binary file.");
            }

            total += length / recordSize;
        }

        var pixels = new byte[total * PixelBytes];
        var rows = new ReadOnlyMemory<byte>[total];
        var labels = new uint[total];
        var record = new byte[recordSize];
        long row = 0;
        foreach (string file in files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            long records = stream.Length / recordSize;
            for (long r = 0; r < records; r++)
            {
                stream.ReadExactly(record);
                int label = record[labelOffset];
                if (label >= names.Count)
                {
                    throw new InvalidDataException(
                        $"CIFAR file '{file}' has label {label} in record {r} (byte offset {r * recordSize + labelOffset}); " +
                        $"expected 0..{names.Count - 1} for the {names.Count} classes of {Path.GetFileName(NamesFile(variant))}.");
                }

                labels[row] = (uint)label;
                var target = pixels.AsMemory((int)(row * PixelBytes), PixelBytes);
                record.AsSpan(labelOffset + 1).CopyTo(target.Span);
                rows[row] = target;
                row++;
            }
        }

        return new ByteImageDataView(Shape, names, rows, labels);
    }

    private static string NamesFile(CifarVariant variant) => variant == CifarVariant.Cifar10 ? "batches.meta.txt" : "fine_label_names.txt";

    private static string NormalizeSplit(string split) => split.ToLowerInvariant() switch
    {
        "train" => "train",
        "test" => "test",
        _ => throw new ArgumentException($"CIFAR split '{split}' is not known; expected 'train' or 'test'.", nameof(split)),
    };
}
