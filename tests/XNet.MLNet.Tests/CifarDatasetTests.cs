using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;
using XNet.Tests.Shared;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class CifarDatasetTests
{
    private readonly MLContext context = new(seed: 0);
    private string root = null!;

    [TestInitialize]
    public void CreateRoot() => root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"xnet-cifar-{Guid.NewGuid():N}")).FullName;

    [TestCleanup]
    public void DeleteRoot() => Directory.Delete(root, recursive: true);

    [TestMethod]
    public void Cifar10RoundTripsLabelsPixelsAndNames()
    {
        var (dir, records) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 3);

        var train = Cifar(root, "train"); // the parent of cifar-10-batches-bin
        var test = Cifar(dir, "test");

        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3, 32, 32), train.Schema["Features"].Type);
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 10), train.Schema["Label"].Type);
        CollectionAssert.AreEqual(GeneratedDatasets.Cifar10Names, KeyNames(train));
        Assert.AreEqual(10L, train.GetRowCount());
        AssertRows(records["train"], train);
        AssertRows(records["test"], test);
    }

    [TestMethod]
    public void Cifar100UsesFineLabelsAndNames()
    {
        var (_, records) = GeneratedDatasets.WriteCifar100(root, trainRecords: 5, testRecords: 2);

        var train = Cifar(root, "train");
        var test = Cifar(root, "TEST");

        Assert.AreEqual(new KeyDataViewType(typeof(uint), 100), train.Schema["Label"].Type);
        CollectionAssert.AreEqual(GeneratedDatasets.Cifar100Names, KeyNames(train));
        AssertRows(records["train"], train);
        AssertRows(records["test"], test);
    }

    [TestMethod]
    public void ImageDatasetsRecognisesBothLayoutsWithSeedStatistics()
    {
        string ten = Directory.CreateDirectory(Path.Combine(root, "a")).FullName;
        string hundred = Directory.CreateDirectory(Path.Combine(root, "b")).FullName;
        GeneratedDatasets.WriteCifar10(ten, 1, 1);
        GeneratedDatasets.WriteCifar100(hundred, 2, 1);

        var cifar10 = ImageDatasets.Load(context, ten, "train");
        var cifar100 = ImageDatasets.Load(context, Path.Combine(hundred, "cifar-100-binary"), "test");

        Assert.AreEqual(ImageDatasetFormat.Cifar10, cifar10.Format);
        Assert.AreEqual(new XNet.Architectures.ImageShape(3, 32, 32), cifar10.Shape);
        CollectionAssert.AreEqual(new[] { 125.3f, 123.0f, 113.9f }, cifar10.Mean!.ToArray());
        CollectionAssert.AreEqual(new[] { 63.0f, 62.1f, 66.7f }, cifar10.Std!.ToArray());
        Assert.AreEqual(XNet.MLNet.Training.AugmentationKind.PadCropFlip, cifar10.Augmentation);
        Assert.AreEqual(4, cifar10.RandomCropPadding);
        Assert.AreEqual(5L, cifar10.Data.GetRowCount());
        Assert.AreEqual(ImageDatasetFormat.Cifar100, cifar100.Format);
        CollectionAssert.AreEqual(new[] { 129.3f, 124.1f, 112.4f }, cifar100.Mean!.ToArray());
        CollectionAssert.AreEqual(new[] { 68.2f, 65.4f, 70.4f }, cifar100.Std!.ToArray());
        Assert.HasCount(100, cifar100.ClassNames);
        Assert.AreEqual(1L, cifar100.Data.GetRowCount());
    }

    [TestMethod]
    public void TruncatedFileIsNamed()
    {
        var (dir, _) = GeneratedDatasets.WriteCifar10(root, 2, 1);
        string file = Path.Combine(dir, "data_batch_3.bin");
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..^1]);

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Cifar(dir, "train"));
        StringAssert.Contains(ex.Message, file);
        StringAssert.Contains(ex.Message, $"{bytes.Length - 1} bytes");
        StringAssert.Contains(ex.Message, "3073-byte record");
    }

    [TestMethod]
    public void TruncatedCifar100FileIsNamedWithItsRecordSize()
    {
        var (dir, _) = GeneratedDatasets.WriteCifar100(root, 3, 1);
        string file = Path.Combine(dir, "test.bin");
        File.WriteAllBytes(file, new byte[100]);

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Cifar(dir, "test"));
        StringAssert.Contains(ex.Message, file);
        StringAssert.Contains(ex.Message, "3074-byte record");
    }

    [TestMethod]
    public void LabelOutOfRangeIsNamed()
    {
        var (dir, _) = GeneratedDatasets.WriteCifar10(root, 2, 2);
        string file = Path.Combine(dir, "test_batch.bin");
        var bytes = File.ReadAllBytes(file);
        bytes[3073] = 10; // the label of record 1
        File.WriteAllBytes(file, bytes);

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Cifar(dir, "test"));
        StringAssert.Contains(ex.Message, file);
        StringAssert.Contains(ex.Message, "label 10 in record 1");
        StringAssert.Contains(ex.Message, "expected 0..9");
    }

    [TestMethod]
    public void FineLabelOutOfRangeIsNamed()
    {
        var (dir, _) = GeneratedDatasets.WriteCifar100(root, 2, 1);
        string file = Path.Combine(dir, "train.bin");
        var bytes = File.ReadAllBytes(file);
        bytes[1] = 100;
        File.WriteAllBytes(file, bytes);

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Cifar(dir, "train"));
        StringAssert.Contains(ex.Message, file);
        StringAssert.Contains(ex.Message, "label 100 in record 0");
    }

    [TestMethod]
    public void MissingBatchFileIsNamed()
    {
        var (dir, _) = GeneratedDatasets.WriteCifar10(root, 1, 1);
        string file = Path.Combine(dir, "data_batch_4.bin");
        File.Delete(file);

        var ex = Assert.ThrowsExactly<FileNotFoundException>(() => Cifar(dir, "train"));
        StringAssert.Contains(ex.Message, file);
        Assert.AreEqual(file, ex.FileName);
        Assert.AreEqual(1L, Cifar(dir, "test").GetRowCount(), "the test split does not need the train files");
    }

    [TestMethod]
    public void MissingClassNamesFileIsNamed()
    {
        var (dir, _) = GeneratedDatasets.WriteCifar100(root, 1, 1);
        string names = Path.Combine(dir, "fine_label_names.txt");
        File.Delete(names);

        var ex = Assert.ThrowsExactly<FileNotFoundException>(() => Cifar(dir, "train"));
        StringAssert.Contains(ex.Message, names);
    }

    [TestMethod]
    public void FolderWithoutCifarFilesAndUnknownSplitAreRefused()
    {
        var notCifar = Assert.ThrowsExactly<DirectoryNotFoundException>(() => Cifar(root, "train"));
        StringAssert.Contains(notCifar.Message, root);
        StringAssert.Contains(notCifar.Message, "not a dataset X-Net recognises");

        var missing = Path.Combine(root, "nope");
        StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => Cifar(missing, "train")).Message, missing);

        GeneratedDatasets.WriteCifar10(root, 1, 1);
        var split = Assert.ThrowsExactly<ArgumentException>(() => Cifar(root, "validation"));
        StringAssert.Contains(split.Message, "'validation'");
    }

    [TestMethod]
    public void ShuffledCursorVisitsEveryRowOnce()
    {
        GeneratedDatasets.WriteCifar10(root, 3, 1);
        var view = Cifar(root, "train");
        var shuffled = context.Data.ShuffleRows(view, seed: 5);

        var ids = new List<float>();
        using var cursor = shuffled.GetRowCursor(shuffled.Schema);
        var getter = cursor.GetGetter<VBuffer<float>>(shuffled.Schema["Features"]);
        VBuffer<float> buffer = default;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            ids.Add(buffer.GetValues()[0] + 256 * buffer.GetValues()[1]);
        }

        CollectionAssert.AreEquivalent(view.GetColumn<float[]>("Features").Select(p => p[0] + 256 * p[1]).ToArray(), ids.ToArray());
    }

    [TestMethod]
    public void TrainsTwoBatchesThroughTheTrainer()
    {
        GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 4, testRecords: 4); // 20 training images, batches of 10
        var train = Cifar(root, "train");
        var options = TestData.SmallOptions();
        options.BatchSize = 10;

        using var model = context.MulticlassClassification.Trainers.XNet(options).Fit(train);
        var scores = model.Transform(Cifar(root, "test")).GetColumn<float[]>("Score").ToArray();

        Assert.AreEqual(new XNet.Architectures.ImageShape(3, 32, 32), model.Model.InputShape);
        CollectionAssert.AreEqual(GeneratedDatasets.Cifar10Names, model.Model.ClassNames.ToArray());
        Assert.HasCount(4, scores);
        Assert.IsTrue(scores.All(s => s.Length == 10 && Math.Abs(s.Sum() - 1) < 1e-4));
    }

    private IDataView Cifar(string path, string split) => ImageDatasets.Load(context, path, split).Data;

    private static string[] KeyNames(IDataView data)
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        data.Schema["Label"].GetKeyValues(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    private static void AssertRows(List<(int Label, byte[] Pixels)> expected, IDataView data)
    {
        var keys = data.GetColumn<uint>("Label").ToArray();
        var features = data.GetColumn<float[]>("Features").ToArray();
        Assert.HasCount(expected.Count, keys);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.AreEqual((uint)expected[i].Label + 1, keys[i], $"row {i}: keys are 1-based, label 0 is key 1");
            CollectionAssert.AreEqual(Array.ConvertAll(expected[i].Pixels, b => (float)b), features[i], $"row {i}");
        }
    }
}
