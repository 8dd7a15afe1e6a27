using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;
using XNet.Tests.Shared;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class IdxDatasetTests
{
    private readonly MLContext context = new(seed: 0);

    [TestMethod]
    public void EmbeddedSubsetIsBalancedAndTyped()
    {
        var train = TestData.Load(context, "train");
        var test = TestData.Load(context, "t10k");

        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 1, 28, 28), train.Schema["Features"].Type);
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 10), train.Schema["Label"].Type);
        VBuffer<ReadOnlyMemory<char>> names = default;
        train.Schema["Label"].GetKeyValues(ref names);
        CollectionAssert.AreEqual(FashionMnist.ClassNames.ToArray(), names.DenseValues().Select(n => n.ToString()).ToArray());

        var counts = train.GetColumn<uint>("Label").GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());
        Assert.HasCount(10, counts);
        Assert.IsTrue(counts.Values.All(c => c == 800));
        Assert.AreEqual(2000, test.GetColumn<uint>("Label").Count());
        var pixels = train.GetColumn<float[]>("Features").First();
        Assert.IsTrue(pixels.All(p => p >= 0 && p <= 255) && pixels.Max() > 1, "raw 0-255 pixel values");
    }

    [TestMethod]
    public void NotAnIdxFileIsNamed()
    {
        string path = TempFile(new byte[] { 1, 2, 3, 4, 5, 6 });
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(path, 3));
        StringAssert.Contains(ex.Message, path);
        StringAssert.Contains(ex.Message, "magic");
    }

    [TestMethod]
    public void TruncatedFileIsNamed()
    {
        string path = TempFile(new byte[] { 0, 0, 8, 1, 0, 0, 0, 5, 1, 2 });
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(path, 1));
        StringAssert.Contains(ex.Message, path);
        StringAssert.Contains(ex.Message, "promises 5");
    }

    [TestMethod]
    public void CorruptGzipIsNamed()
    {
        string path = TempFile(new byte[] { 0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 9, 9, 9 });
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.Read(path, 1));
        StringAssert.Contains(ex.Message, path);
    }

    [TestMethod]
    public void ImagesAndLabelsMustAgree()
    {
        string images = TempFile(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7, 9 });
        string labels = TempFile(new byte[] { 0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 1 });
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => IdxDataset.Load(context, images, labels));
        StringAssert.Contains(ex.Message, "holds 2 images");
        StringAssert.Contains(ex.Message, "holds 3 labels");
    }

    [TestMethod]
    public void GzippedAndPlainFilesReadTheSame()
    {
        var bytes = new byte[] { 0, 0, 8, 1, 0, 0, 0, 3, 4, 5, 6 };
        string plain = TempFile(bytes);
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(bytes);
        }

        string zipped = TempFile(buffer.ToArray());
        CollectionAssert.AreEqual(IdxFile.Read(plain, 1).Data, IdxFile.Read(zipped, 1).Data);
        CollectionAssert.AreEqual(new byte[] { 4, 5, 6 }, IdxFile.Read(plain, 1).Data);
    }

    [TestMethod]
    public void GeneratedIdxFolderIsDetectedAndTrainsTwoBatches()
    {
        string directory = GeneratedDatasets.WriteIdx(Path.Combine(Path.GetTempPath(), $"xnet-test-{Guid.NewGuid():N}", "mnist"), 20, 10);

        var train = ImageDatasets.Load(context, directory, "train");
        var test = ImageDatasets.Load(context, directory, "test");
        var options = TestData.SmallOptions();
        options.BatchSize = 10;
        using var model = context.MulticlassClassification.Trainers.XNet(options).Fit(train.Data);
        var metrics = context.MulticlassClassification.Evaluate(model.Transform(test.Data));

        Assert.AreEqual(ImageDatasetFormat.Idx, train.Format);
        Assert.AreEqual(new XNet.Architectures.ImageShape(1, 28, 28), model.Model.InputShape);
        CollectionAssert.AreEqual(Enumerable.Range(0, 10).Select(i => $"{i}").ToArray(), model.Model.ClassNames.ToArray());
        Assert.AreEqual(10, metrics.ConfusionMatrix.Counts.Sum(row => row.Sum()), "every test image scored once");
    }

    [TestMethod]
    public void MissingSplitFilesAreNamed()
    {
        var ex = Assert.ThrowsExactly<FileNotFoundException>(() => FashionMnist.Files(Path.GetTempPath(), "nosuchsplit"));
        StringAssert.Contains(ex.Message, "nosuchsplit-images-idx3-ubyte");
    }

    private static string TempFile(byte[] content)
    {
        string path = Path.Combine(Path.GetTempPath(), $"xnet-test-{Guid.NewGuid():N}.idx");
        File.WriteAllBytes(path, content);
        return path;
    }
}
