using System.IO.Compression;
namespace XNet.Tests.Shared;

/// <summary>
/// Tiny datasets written in the real file formats (CIFAR-10/100 binary, BMP image folders) for tests that read or train
/// on them; shared by the library and CLI test projects.
/// </summary>
internal static class GeneratedDatasets
{
    /// <summary>Bytes of one 3x32x32 CIFAR image.</summary>
    public const int CifarPixels = 3 * 32 * 32;

    internal static readonly string[] Cifar10Names =
        { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" };

    internal static readonly string[] Cifar100Names = Enumerable.Range(0, 100).Select(i => $"fine_{i:D2}").ToArray();

    /// <summary>Writes cifar-10-batches-bin under <paramref name="parent"/>: five train batches and a test batch of seeded random records.</summary>
    internal static (string Dir, Dictionary<string, List<(int Label, byte[] Pixels)>> Records) WriteCifar10(
        string parent, int recordsPerBatch, int testRecords)
    {
        string dir = Directory.CreateDirectory(Path.Combine(parent, "cifar-10-batches-bin")).FullName;
        File.WriteAllText(Path.Combine(dir, "batches.meta.txt"), string.Join("\n", Cifar10Names) + "\n\n");
        var random = new Random(7);
        var records = new Dictionary<string, List<(int, byte[])>> { ["train"] = new(), ["test"] = new() };
        for (int batch = 1; batch <= 6; batch++)
        {
            string split = batch == 6 ? "test" : "train";
            using var stream = File.Create(Path.Combine(dir, batch == 6 ? "test_batch.bin" : $"data_batch_{batch}.bin"));
            for (int r = 0; r < (batch == 6 ? testRecords : recordsPerBatch); r++)
            {
                int label = random.Next(10);
                var pixels = new byte[CifarPixels];
                random.NextBytes(pixels);
                stream.WriteByte((byte)label);
                stream.Write(pixels);
                records[split].Add((label, pixels));
            }
        }

        return (dir, records);
    }

    /// <summary>Writes cifar-100-binary under <paramref name="parent"/>; coarse labels differ from fine ones so a mix-up shows.</summary>
    internal static (string Dir, Dictionary<string, List<(int Label, byte[] Pixels)>> Records) WriteCifar100(
        string parent, int trainRecords, int testRecords)
    {
        string dir = Directory.CreateDirectory(Path.Combine(parent, "cifar-100-binary")).FullName;
        File.WriteAllLines(Path.Combine(dir, "fine_label_names.txt"), Cifar100Names);
        File.WriteAllLines(Path.Combine(dir, "coarse_label_names.txt"), Enumerable.Range(0, 20).Select(i => $"coarse_{i}"));
        var random = new Random(11);
        var records = new Dictionary<string, List<(int, byte[])>> { ["train"] = new(), ["test"] = new() };
        foreach (var (split, count) in new[] { ("train", trainRecords), ("test", testRecords) })
        {
            using var stream = File.Create(Path.Combine(dir, $"{split}.bin"));
            for (int r = 0; r < count; r++)
            {
                int fine = 20 + random.Next(80);
                var pixels = new byte[CifarPixels];
                random.NextBytes(pixels);
                stream.WriteByte((byte)(fine % 20));
                stream.WriteByte((byte)fine);
                stream.Write(pixels);
                records[split].Add((fine, pixels));
            }
        }

        return (dir, records);
    }

    /// <summary>A deterministic image [y, x, (R, G, B)] that differs per seed and per channel.</summary>
    internal static byte[,,] Pattern(int height, int width, int seed)
    {
        var pixels = new byte[height, width, 3];
        var random = new Random(seed);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                for (int c = 0; c < 3; c++)
                {
                    pixels[y, x, c] = (byte)random.Next(256);
                }
            }
        }

        return pixels;
    }

    /// <summary>The planar (R plane, G plane, B plane) floats of an image, the Features layout.</summary>
    internal static float[] Planar(byte[,,] pixels)
    {
        int height = pixels.GetLength(0), width = pixels.GetLength(1);
        var planar = new float[3 * height * width];
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    planar[(c * height + y) * width + x] = pixels[y, x, c];
                }
            }
        }

        return planar;
    }

    /// <summary>Writes a 24-bit uncompressed BMP (bottom-up rows of B, G, R, each padded to 4 bytes).</summary>
    internal static byte[,,] WriteBmp(string path, byte[,,] pixels)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        int height = pixels.GetLength(0), width = pixels.GetLength(1);
        int stride = (width * 3 + 3) & ~3;
        int dataSize = stride * height;
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write((byte)'B');
        writer.Write((byte)'M');
        writer.Write(14 + 40 + dataSize); // file size
        writer.Write(0); // reserved
        writer.Write(14 + 40); // pixel data offset
        writer.Write(40); // BITMAPINFOHEADER
        writer.Write(width);
        writer.Write(height); // positive: bottom-up
        writer.Write((short)1); // planes
        writer.Write((short)24); // bits per pixel
        writer.Write(0); // BI_RGB
        writer.Write(dataSize);
        writer.Write(2835); // 72 dpi
        writer.Write(2835);
        writer.Write(0);
        writer.Write(0);
        var row = new byte[stride];
        for (int y = height - 1; y >= 0; y--)
        {
            for (int x = 0; x < width; x++)
            {
                row[3 * x] = pixels[y, x, 2];
                row[3 * x + 1] = pixels[y, x, 1];
                row[3 * x + 2] = pixels[y, x, 0];
            }

            writer.Write(row);
        }

        return pixels;
    }

    /// <summary>
    /// Writes MNIST-style idx files (<c>train-</c> and <c>t10k-images-idx3-ubyte</c>, <c>-labels-idx1-ubyte</c>) of seeded
    /// random 28x28 digits with labels 0-9 into <paramref name="directory"/>.
    /// </summary>
    internal static string WriteIdx(string directory, int trainImages, int testImages)
    {
        Directory.CreateDirectory(directory);
        var random = new Random(5);
        foreach (var (split, count) in new[] { ("train", trainImages), ("t10k", testImages) })
        {
            var images = new byte[16 + count * 28 * 28];
            new byte[] { 0, 0, 8, 3 }.CopyTo(images, 0);
            BigEndian(images, 4, count);
            BigEndian(images, 8, 28);
            BigEndian(images, 12, 28);
            random.NextBytes(images.AsSpan(16));
            var labels = new byte[8 + count];
            new byte[] { 0, 0, 8, 1 }.CopyTo(labels, 0);
            BigEndian(labels, 4, count);
            for (int i = 0; i < count; i++)
            {
                labels[8 + i] = (byte)(i % 10);
            }

            File.WriteAllBytes(Path.Combine(directory, $"{split}-images-idx3-ubyte"), images);
            File.WriteAllBytes(Path.Combine(directory, $"{split}-labels-idx1-ubyte"), labels);
        }

        return directory;
    }

    private static void BigEndian(byte[] buffer, int offset, int value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(offset), value);

    /// <summary>
    /// root/&lt;class&gt;/NNN.bmp: <paramref name="perClass"/> training images of each of three easy Fashion-MNIST classes
    /// (trouser, bag, sneaker) from the embedded subset, as RGB bitmaps: a tiny learnable image folder.
    /// </summary>
    internal static string WriteFashionFolder(string root, int perClass)
    {
        string data = Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");
        byte[] pixels = Gunzip(Path.Combine(data, "train-images-idx3-ubyte.gz"))[16..];
        byte[] labels = Gunzip(Path.Combine(data, "train-labels-idx1-ubyte.gz"))[8..];
        var wanted = new Dictionary<int, string> { [1] = "trouser", [8] = "bag", [7] = "sneaker" };
        var written = wanted.Keys.ToDictionary(k => k, _ => 0);
        for (int i = 0; i < labels.Length; i++)
        {
            if (wanted.TryGetValue(labels[i], out var name) && written[labels[i]] < perClass)
            {
                var image = new byte[28, 28, 3];
                for (int y = 0; y < 28; y++)
                {
                    for (int x = 0; x < 28; x++)
                    {
                        byte v = pixels[i * 784 + y * 28 + x];
                        (image[y, x, 0], image[y, x, 1], image[y, x, 2]) = (v, v, v);
                    }
                }

                GeneratedDatasets.WriteBmp(Path.Combine(root, name, $"{written[labels[i]]++:D3}.bmp"), image);
            }
        }

        return root;
    }

    private static byte[] Gunzip(string path)
    {
        using var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }
}
