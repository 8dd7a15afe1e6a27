using System.Buffers.Binary;
using System.IO.Compression;
using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// Hostile datasets for <c>xnet train --data</c> (CIFAR binary folders, idx files, image folders) and hostile images for
/// <c>xnet predict --image</c>. Each must end with exit code 1 and one <c>error:</c> line naming the culprit file or
/// folder, without a stack trace, a hang (named pipes, link loops), an absurd allocation (bombs) or a run folder written.
/// </summary>
[TestClass]
public sealed class HostileDataTests : HostileTestBase
{
    [TestMethod]
    [DataRow("data_batch_2.bin truncated to 100 bytes")]
    [DataRow("test_batch.bin one byte short")]
    [DataRow("label 10 in data_batch_1.bin")]
    [DataRow("label 255 in test_batch.bin")]
    [DataRow("batches.meta.txt missing")]
    [DataRow("batches.meta.txt with one name")]
    [DataRow("batches.meta.txt empty")]
    [DataRow("batches.meta.txt is a directory")]
    [DataRow("data_batch_3.bin is a directory")]
    [DataRow("data_batch_5.bin is a symbolic link loop")]
    [DataRow("data_batch_4.bin claims 1,000,000 records (sparse 3 GB)")]
    [DataRow("data_batch_1.bin is a named pipe (FIFO)")]
    [DataRow("batches.meta.txt is a named pipe (FIFO)")]
    [DataRow("CIFAR-100 fine label 100 in train.bin")]
    [DataRow("CIFAR-100 fine_label_names.txt missing")]
    public void TrainRefusesADamagedCifarFolder(string damage)
    {
        string root = NewFolder();
        string data, culprit;
        if (damage.StartsWith("CIFAR-100", StringComparison.Ordinal))
        {
            (data, _) = GeneratedDatasets.WriteCifar100(root, trainRecords: 10, testRecords: 5);
            culprit = Path.Combine(data, damage.Contains("names", StringComparison.Ordinal) ? "fine_label_names.txt" : "train.bin");
            if (damage.Contains("names", StringComparison.Ordinal))
            {
                File.Delete(culprit);
            }
            else
            {
                using var file = new FileStream(culprit, FileMode.Open, FileAccess.Write);
                file.Position = 3074 * 3 + 1; // the fine label of record 3
                file.WriteByte(100);
            }
        }
        else
        {
            (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
            culprit = Path.Combine(data, damage.Split(' ').First(w => w.EndsWith(".bin", StringComparison.Ordinal) || w.EndsWith(".txt", StringComparison.Ordinal)));
            DamageCifar10(culprit, damage);
        }

        string output = Path.Combine(root, "out");
        bool isolated = damage.Contains("FIFO", StringComparison.Ordinal) || damage.Contains("sparse", StringComparison.Ordinal);

        var run = Train(isolated, data, output);

        HostileCases.AssertRefused(run, 1, [culprit], absent: [output]);
    }

    [TestMethod]
    [DataRow("images bad magic")]
    [DataRow("labels bad magic")]
    [DataRow("images of rank 1")]
    [DataRow("labels of rank 3")]
    [DataRow("images truncated (data)")]
    [DataRow("images truncated inside the header")]
    [DataRow("labels truncated")]
    [DataRow("images claim 2147483647 images")]
    [DataRow("images with a negative dimension")]
    [DataRow("images of width 0")]
    [DataRow("image and label counts differ")]
    [DataRow("zero images")]
    [DataRow("images gzip bomb (128 MiB)")]
    [DataRow("labels gzip bomb (128 MiB)")]
    [DataRow("images gzip truncated")]
    [DataRow("images gzip CRC altered")]
    [DataRow("images file is a directory")]
    [DataRow("labels file missing")]
    [DataRow("images file is a named pipe (FIFO)")]
    [DataRow("labels file is a named pipe (FIFO)")]
    public void TrainRefusesDamagedIdxFiles(string damage)
    {
        string root = NewFolder();
        string data = GeneratedDatasets.WriteIdx(Path.Combine(root, "mnist"), trainImages: 10, testImages: 5);
        string images = Path.Combine(data, "train-images-idx3-ubyte");
        string labels = Path.Combine(data, "train-labels-idx1-ubyte");
        string culprit = damage.StartsWith("labels", StringComparison.Ordinal) ? labels : images;
        switch (damage)
        {
            case "images bad magic":
            case "labels bad magic":
                Patch(culprit, 0, [0x1F, 0x00, 0x08]);
                break;
            case "images of rank 1": Patch(images, 3, [1]); break;
            case "labels of rank 3": Patch(labels, 3, [3]); break;
            case "images truncated (data)": HostileCases.Truncate(images, new FileInfo(images).Length - 100); break;
            case "images truncated inside the header": HostileCases.Truncate(images, 10); break;
            case "labels truncated": HostileCases.Truncate(labels, new FileInfo(labels).Length - 3); break;
            case "images claim 2147483647 images": PatchInt(images, 4, int.MaxValue); break;
            case "images with a negative dimension": PatchInt(images, 8, -28); break;
            case "images of width 0":
                HostileCases.Truncate(images, 16);
                PatchInt(images, 12, 0);
                break;
            case "image and label counts differ":
                HostileCases.Truncate(labels, new FileInfo(labels).Length - 1);
                PatchInt(labels, 4, 9);
                culprit = labels;
                break;
            case "zero images":
                HostileCases.Truncate(images, 16);
                PatchInt(images, 4, 0);
                HostileCases.Truncate(labels, 8);
                PatchInt(labels, 4, 0);
                break;
            case "images gzip bomb (128 MiB)":
            case "labels gzip bomb (128 MiB)":
                culprit = GzipWithTrailingZeros(culprit, 128L << 20);
                break;
            case "images gzip truncated":
                culprit = GzipWithTrailingZeros(images, 0);
                HostileCases.Truncate(culprit, new FileInfo(culprit).Length / 2);
                break;
            case "images gzip CRC altered":
                culprit = GzipWithTrailingZeros(images, 0);
                Patch(culprit, new FileInfo(culprit).Length - 8, [0xDE, 0xAD, 0xBE, 0xEF]);
                break;
            case "images file is a directory":
                File.Delete(images);
                Directory.CreateDirectory(images);
                break;
            case "labels file missing":
                File.Delete(labels);
                break;
            case "images file is a named pipe (FIFO)":
            case "labels file is a named pipe (FIFO)":
                File.Delete(culprit);
                HostileCases.MakeFifo(culprit);
                break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }

        string output = Path.Combine(root, "out");
        var run = Train(damage.Contains("FIFO", StringComparison.Ordinal), data, output);

        // A file that is not there (or not a file) may be named by its folder and name.
        string[] names = damage is "labels file missing" or "images file is a directory" ? [data, Path.GetFileName(culprit)] : [culprit];
        HostileCases.AssertRefused(run, 1, names, absent: [output],
            maxAllocated: damage.Contains("bomb", StringComparison.Ordinal) ? HostileCases.BombAllocationBudget : null);
    }

    [TestMethod]
    [DataRow("one class only")]
    [DataRow("an empty class folder")]
    [DataRow("a corrupt image")]
    [DataRow("a zero-byte image")]
    [DataRow("a truncated BMP")]
    [DataRow("a PNG bomb (100000 x 100000)")]
    [DataRow("a dangling symbolic link")]
    [DataRow("a symbolic link loop (file)")]
    [DataRow("a symbolic link loop (folder)")]
    [DataRow("a symbolic link to another class's image")]
    [DataRow("a class folder that links to another class")]
    [DataRow("a named pipe (FIFO) as an image")]
    [DataRow("val classes differ from train classes")]
    public void TrainRefusesAHostileImageFolder(string damage)
    {
        string root = NewFolder();
        string data = Path.Combine(root, "images");
        bool splits = damage == "val classes differ from train classes";
        foreach (string split in splits ? new[] { "train", "val" } : [""])
        {
            foreach (string label in split == "val" ? new[] { "a", "c" } : ["a", "b"])
            {
                for (int i = 0; i < 2; i++)
                {
                    HostileCases.WriteImage(Path.Combine(data, split, label, $"{i}.bmp"), size: 12, seed: i);
                }
            }
        }

        string a = Path.Combine(data, "a"), b = Path.Combine(data, "b");
        string culprit;
        switch (damage)
        {
            case "one class only":
                Directory.Delete(b, recursive: true);
                culprit = data;
                break;
            case "an empty class folder":
                culprit = Directory.CreateDirectory(Path.Combine(data, "c")).FullName;
                break;
            case "a corrupt image":
                culprit = Path.Combine(a, "corrupt.png");
                File.WriteAllBytes(culprit, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3, 4, 5, 6, 7, 8, 9]);
                break;
            case "a zero-byte image":
                culprit = Path.Combine(b, "empty.jpg");
                File.WriteAllBytes(culprit, []);
                break;
            case "a truncated BMP":
                culprit = Path.Combine(a, "1.bmp");
                HostileCases.Truncate(culprit, 60);
                break;
            case "a PNG bomb (100000 x 100000)":
                culprit = Path.Combine(a, "bomb.png");
                HostileCases.WritePngBomb(culprit, 100000, 100000);
                break;
            case "a dangling symbolic link":
                culprit = Path.Combine(a, "gone.bmp");
                File.CreateSymbolicLink(culprit, Path.Combine(a, "nothing-here.bmp"));
                break;
            case "a symbolic link loop (file)":
                culprit = Path.Combine(a, "self.bmp");
                File.CreateSymbolicLink(culprit, culprit);
                break;
            case "a symbolic link loop (folder)":
                culprit = Path.Combine(a, "loop");
                Directory.CreateSymbolicLink(culprit, data);
                break;
            case "a symbolic link to another class's image":
                culprit = Path.Combine(a, "borrowed.bmp");
                File.CreateSymbolicLink(culprit, Path.Combine(b, "0.bmp"));
                break;
            case "a class folder that links to another class":
                culprit = Path.Combine(data, "c");
                Directory.CreateSymbolicLink(culprit, a);
                break;
            case "a named pipe (FIFO) as an image":
                culprit = Path.Combine(a, "pipe.png");
                HostileCases.MakeFifo(culprit);
                break;
            case "val classes differ from train classes":
                culprit = Path.Combine(data, "val");
                break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }

        string output = Path.Combine(root, "out");
        bool isolated = damage.Contains("FIFO", StringComparison.Ordinal) || damage.Contains("bomb", StringComparison.Ordinal)
                        || damage == "a symbolic link loop (folder)";

        var run = Train(isolated, data, output, "--image-size", "8");

        HostileCases.AssertRefused(run, 1, [culprit], absent: [output]);
    }

    [TestMethod]
    [DataRow("a corrupt image")]
    [DataRow("a zero-byte image")]
    [DataRow("a truncated BMP")]
    [DataRow("a directory")]
    [DataRow("a symbolic link loop")]
    [DataRow("a named pipe (FIFO)")]
    [DataRow("a PNG bomb (100000 x 100000)")]
    public void PredictRefusesAHostileImage(string damage)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string image = Path.Combine(folder, damage.Contains("PNG", StringComparison.Ordinal) || damage.Contains("corrupt", StringComparison.Ordinal) ? "image.png" : "image.bmp");
        switch (damage)
        {
            case "a corrupt image": File.WriteAllText(image, "not an image"); break;
            case "a zero-byte image": File.WriteAllBytes(image, []); break;
            case "a truncated BMP":
                HostileCases.WriteImage(image);
                HostileCases.Truncate(image, 60);
                break;
            case "a directory": Directory.CreateDirectory(image); break;
            case "a symbolic link loop": File.CreateSymbolicLink(image, image); break;
            case "a named pipe (FIFO)": HostileCases.MakeFifo(image); break;
            case "a PNG bomb (100000 x 100000)": HostileCases.WritePngBomb(image, 100000, 100000); break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }

        string[] args = ["predict", "--model", fixture.Model, "--image", image];
        bool isolated = damage.Contains("FIFO", StringComparison.Ordinal) || damage.Contains("bomb", StringComparison.Ordinal);
        var run = isolated ? HostileCases.RunIsolated(TimeSpan.FromSeconds(10), args) : HostileCases.Run(args);

        HostileCases.AssertRefused(run, 1, [image]);
    }

    [TestMethod]
    public void TrainSkipsAnUnreadableImageWhenAskedAndSaysSoOnce()
    {
        string root = NewFolder();
        string data = Path.Combine(root, "images");
        foreach (string label in new[] { "a", "b" })
        {
            for (int i = 0; i < 4; i++)
            {
                HostileCases.WriteImage(Path.Combine(data, label, $"{i}.bmp"), size: 12, seed: i);
            }
        }

        string culprit = Path.Combine(data, "a", "truncated.bmp");
        HostileCases.WriteImage(culprit);
        HostileCases.Truncate(culprit, 60);

        var run = Train(false, data, Path.Combine(root, "out"), "--skip-unreadable");

        HostileCases.AssertSucceeded(run);
        Assert.AreEqual(1, run.Output.Split('\n').Count(line => line.Contains("skipped unreadable image", StringComparison.Ordinal)), run.Output);
        StringAssert.Contains(run.Output, "truncated.bmp");
    }

    /// <summary><c>xnet train</c> of one tiny epoch on <paramref name="data"/> into <paramref name="output"/>.</summary>
    private static HostileRun Train(bool isolated, string data, string output, params string[] more)
    {
        string[] args = ["train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "1", "--batch-size", "5", "--output-dir", output, .. more];
        return isolated ? HostileCases.RunIsolated(TimeSpan.FromSeconds(12), args) : HostileCases.Run(args);
    }

    private static void DamageCifar10(string culprit, string damage)
    {
        switch (damage)
        {
            case "data_batch_2.bin truncated to 100 bytes": HostileCases.Truncate(culprit, 100); break;
            case "test_batch.bin one byte short": HostileCases.Truncate(culprit, new FileInfo(culprit).Length - 1); break;
            case "label 10 in data_batch_1.bin": Patch(culprit, 3073, [10]); break;
            case "label 255 in test_batch.bin": Patch(culprit, 3073 * 2, [255]); break;
            case "batches.meta.txt missing": File.Delete(culprit); break;
            case "batches.meta.txt with one name": File.WriteAllText(culprit, "airplane\n"); break;
            case "batches.meta.txt empty": File.WriteAllText(culprit, ""); break;
            case "batches.meta.txt is a directory":
            case "data_batch_3.bin is a directory":
                File.Delete(culprit);
                Directory.CreateDirectory(culprit);
                break;
            case "data_batch_5.bin is a symbolic link loop":
                File.Delete(culprit);
                File.CreateSymbolicLink(culprit, culprit);
                break;
            case "data_batch_4.bin claims 1,000,000 records (sparse 3 GB)":
                HostileCases.MakeSparse(culprit, 3073L * 1_000_000);
                break;
            case "data_batch_1.bin is a named pipe (FIFO)":
            case "batches.meta.txt is a named pipe (FIFO)":
                File.Delete(culprit);
                HostileCases.MakeFifo(culprit);
                break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }
    }

    private static void Patch(string path, long offset, byte[] bytes)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.Position = offset;
        file.Write(bytes);
    }

    private static void PatchInt(string path, long offset, int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        Patch(path, offset, bytes);
    }

    /// <summary>Replaces <paramref name="path"/> by <paramref name="path"/>.gz: its bytes, then <paramref name="zeros"/> zero bytes (a few hundred KB on disk for 128 MiB).</summary>
    private static string GzipWithTrailingZeros(string path, long zeros)
    {
        string gz = path + ".gz";
        using (var file = File.Create(gz))
        using (var gzip = new GZipStream(file, CompressionLevel.SmallestSize))
        {
            gzip.Write(File.ReadAllBytes(path));
            var chunk = new byte[1 << 20];
            for (long done = 0; done < zeros; done += chunk.Length)
            {
                gzip.Write(chunk, 0, (int)Math.Min(chunk.Length, zeros - done));
            }
        }

        File.Delete(path);
        return gz;
    }
}
