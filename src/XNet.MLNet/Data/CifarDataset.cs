using XNet.Architectures;

namespace XNet.MLNet.Data;

/// <summary>
/// Reads the binary versions of CIFAR-10 and CIFAR-100 for <see cref="ImageDatasets.Load"/>: a key-typed <c>Label</c>
/// (KeyValues: the class names) and <c>Features</c> typed <c>Vector&lt;Single, 3, 32, 32&gt;</c> of raw 0-255 values,
/// planar (R, G, B), which is how the files store them.
/// </summary>
/// <remarks>
/// CIFAR-10 (<c>cifar-10-batches-bin</c>): <c>data_batch_1.bin</c> .. <c>data_batch_5.bin</c> form the train split,
/// <c>test_batch.bin</c> the test split; a record is 1 label byte and 3072 pixel bytes; class names come from
/// <c>batches.meta.txt</c>. CIFAR-100 (<c>cifar-100-binary</c>): <c>train.bin</c> and <c>test.bin</c>; a record is a
/// coarse label byte, a fine label byte and 3072 pixel bytes; the fine label is used, with the names in
/// <c>fine_label_names.txt</c>. The split is read into memory as bytes (at most 150 MB).
/// </remarks>
internal static class CifarDataset
{
    private static readonly ImageShape Shape = new(3, 32, 32);

    /// <summary>Finds the CIFAR layout in <paramref name="path"/> or in one of its subfolders named as the archives unpack.</summary>
    /// <returns>The dataset found (<see cref="ImageDatasetFormat.Cifar10"/> or <see cref="ImageDatasetFormat.Cifar100"/>) and its folder, or null.</returns>
    public static (ImageDatasetFormat Format, string Directory)? Locate(string path)
    {
        foreach (var candidate in new[] { path, Path.Combine(path, "cifar-10-batches-bin"), Path.Combine(path, "cifar-100-binary") })
        {
            bool Has(params string[] files) => files.Any(f => File.Exists(Path.Combine(candidate, f)));
            if (Has("batches.meta.txt", "test_batch.bin", "data_batch_1.bin"))
            {
                return (ImageDatasetFormat.Cifar10, candidate);
            }

            if (Has("fine_label_names.txt", "train.bin", "test.bin"))
            {
                return (ImageDatasetFormat.Cifar100, candidate);
            }
        }

        return null;
    }

    /// <summary>Reads the <c>train</c> or <c>test</c> split of a folder <see cref="Locate"/> found.</summary>
    /// <exception cref="FileNotFoundException">When a file of the split or the class names file is missing; the message names it.</exception>
    /// <exception cref="InvalidDataException">When a file is truncated or has a label out of range; the message names it.</exception>
    public static ByteImageDataView Read(string directory, ImageDatasetFormat format, string split)
    {
        bool ten = format == ImageDatasetFormat.Cifar10;
        var files = (ten, split) switch
        {
            (true, "train") => Enumerable.Range(1, 5).Select(i => Path.Combine(directory, $"data_batch_{i}.bin")).ToArray(),
            (true, _) => new[] { Path.Combine(directory, "test_batch.bin") },
            (false, _) => new[] { Path.Combine(directory, $"{split}.bin") },
        };
        string namesFile = Path.Combine(directory, ten ? "batches.meta.txt" : "fine_label_names.txt");
        var names = ClassNames(namesFile);
        int labelOffset = ten ? 0 : 1; // CIFAR-100: coarse label, then fine label
        int pixelBytes = Shape.Size, recordSize = labelOffset + 1 + pixelBytes;

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
                    $"({(ten ? "1 label byte" : "coarse and fine label bytes")} + {pixelBytes} pixel bytes): it is truncated or not a " +
                    $"{(ten ? "CIFAR-10" : "CIFAR-100")} binary file.");
            }

            total += length / recordSize;
        }

        if (total * pixelBytes > 1L << 30)
        {
            throw new InvalidDataException(
                $"CIFAR files '{string.Join("', '", files)}' hold {total:N0} records, far more than a CIFAR split: a damaged or foreign file.");
        }

        var pixels = new byte[total * pixelBytes];
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
                if (label >= names.Length)
                {
                    throw new InvalidDataException(
                        $"CIFAR file '{file}' has label {label} in record {r} (byte offset {r * recordSize + labelOffset}); " +
                        $"expected 0..{names.Length - 1} for the {names.Length} classes of {Path.GetFileName(namesFile)}.");
                }

                labels[row] = (uint)label;
                var target = pixels.AsMemory((int)(row * pixelBytes), pixelBytes);
                record.AsSpan(labelOffset + 1).CopyTo(target.Span);
                rows[row++] = target;
            }
        }

        return new ByteImageDataView(Shape, names, rows, labels);
    }

    private static string[] ClassNames(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"CIFAR class names file '{path}' does not exist.", path);
        }

        if (new FileInfo(path).Length is 0 or > 1 << 20)
        {
            throw new InvalidDataException($"CIFAR class names file '{path}' is empty, not a regular file, or larger than 1 MiB.");
        }

        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length >= 2 ? names
            : throw new InvalidDataException($"CIFAR class names file '{path}' holds {names.Length} names; expected one per line, at least 2.");
    }
}
