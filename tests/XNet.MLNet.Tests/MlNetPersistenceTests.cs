using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.Tests.Shared;

namespace XNet.MLNet.Tests;

/// <summary>
/// mlContext.Model.Save of a pipeline with an X-Net, and Model.Load in a process that has no X-Net or TorchSharp
/// assembly (tests/XNet.Persistence.Probe): same predictions, same accuracy, a scalar key PredictedLabel.
/// </summary>
[TestClass]
public sealed class MlNetPersistenceTests
{
    private static readonly MLContext Context = new(seed: 1);
    private static readonly List<string> Log = new();
    private static IDataView train = null!;
    private static IDataView test = null!;
    private static TransformerChain<XNetTransformer> model = null!;
    private static string folder = null!;
    private static string zip = null!;

    [ClassInitialize]
    public static void TrainAndSave(TestContext _)
    {
        Context.Log += (_, e) =>
        {
            lock (Log)
            {
                Log.Add(e.Message);
            }
        };
        train = TestData.WithTextLabels(Context, TestData.Take(Context, "train", 400));
        test = TestData.WithTextLabels(Context, TestData.Take(Context, "t10k", 200));
        model = Context.Transforms.Conversion.MapValueToKey("Label")
            .Append(Context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions(epochs: 1)))
            .Fit(train);
        folder = Path.Combine(Path.GetTempPath(), $"xnet-native-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        zip = Path.Combine(folder, "model.zip");
        Context.Model.Save(model, train.Schema, zip);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        model.LastTransformer.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    [TestMethod]
    public void LoadedInAProcessWithoutXNetGivesTheSamePredictionsAndAccuracy()
    {
        var scored = model.Transform(test);
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        double accuracy = Context.MulticlassClassification.Evaluate(scored).MicroAccuracy;

        var probe = RunProbe(zip, WriteRows(test));

        Assert.AreEqual("Key<UInt32, 0-9>\tVector<Single, 10>", probe.Single(l => l[0] == "types").Skip(1).Aggregate((a, b) => a + "\t" + b));
        var rows = probe.Where(l => l[0] == "row").ToArray();
        Assert.HasCount(200, rows);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.AreEqual(keys[i], uint.Parse(rows[i][2], CultureInfo.InvariantCulture), $"row {i}");
            Assert.AreEqual(model.LastTransformer.Model.ClassNames[(int)keys[i] - 1], rows[i][3], $"row {i}");
            var loaded = rows[i][4].Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            for (int c = 0; c < 10; c++)
            {
                Assert.AreEqual(scores[i][c], loaded[c], 1e-5, $"row {i}, class {c}");
            }
        }

        Assert.AreEqual(accuracy, double.Parse(probe.Single(l => l[0] == "accuracy")[1], CultureInfo.InvariantCulture), 1e-6);
        Assert.AreEqual(keys[0].ToString(CultureInfo.InvariantCulture), probe.Single(l => l[0] == "engine")[1]);
        Assert.AreEqual("0", probe.Single(l => l[0] == "foreign-assemblies")[1]);
    }

    [TestMethod]
    public void LoadedModelWorksWithPredictionEngineAndMapKeyToValue()
    {
        var loaded = Context.Model.Load(zip, out var inputSchema);
        try
        {
            Assert.IsFalse(Flatten(loaded).Any(t => t is XNetTransformer), string.Join(", ", Flatten(loaded).Select(t => t.GetType().Name)));
            Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 1, 28, 28), inputSchema["Features"].Type);
            // Score keeps the class names as slot names (Model Builder's GetSortedScoresWithLabels reads them); PredictedLabel its KeyValues.
            var outputSchema = loaded.GetOutputSchema(inputSchema);
            var slotNames = new VBuffer<ReadOnlyMemory<char>>();
            outputSchema["Score"].GetSlotNames(ref slotNames);
            CollectionAssert.AreEqual(model.LastTransformer.Model.ClassNames.ToArray(), slotNames.DenseValues().Select(n => n.ToString()).ToArray());
            Assert.IsTrue(outputSchema["PredictedLabel"].HasKeyValues());
            var withNames = Context.Transforms.Conversion.MapKeyToValue("PredictedName", "PredictedLabel").Fit(loaded.Transform(test));
            var rows = Context.Data.CreateEnumerable<FashionRow>(test, reuseRowObject: false).Take(5).ToArray();
            var expected = Context.Transforms.Conversion.MapKeyToValue("PredictedName", "PredictedLabel").Fit(model.Transform(test))
                .Transform(model.Transform(test)).GetColumn<string>("PredictedName").Take(5).ToArray();
            var chain = new TransformerChain<ITransformer>(loaded, withNames);
            using var engine = Context.Model.CreatePredictionEngine<FashionRow, NamedPrediction>(chain);
            for (int i = 0; i < rows.Length; i++)
            {
                var prediction = engine.Predict(rows[i]);
                Assert.AreEqual(expected[i], prediction.PredictedName, $"row {i}");
                Assert.AreEqual(1.0, prediction.Score.Sum(), 1e-4);
            }
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    [TestMethod]
    public void SaveWritesOnlyTheTargetAndTheZipCarriesTheXNet()
    {
        string temp = Path.GetTempPath();
        var before = Directory.GetFiles(temp, "xnet-save-*");
        string target = Path.Combine(folder, "only", "model.zip");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);

        Context.Model.Save(model.LastTransformer, model.First().Transform(train).Schema, target);

        CollectionAssert.AreEqual(new[] { "model.zip" }, Directory.GetFiles(Path.GetDirectoryName(target)!).Select(Path.GetFileName).ToArray());
        CollectionAssert.AreEquivalent(before, Directory.GetFiles(temp, "xnet-save-*"));
        Assert.AreEqual(XNetModelFileKind.MLNet, XNetModelFile.Detect(target));
        using var embedded = XNetModelFile.Load(target, "cpu");
        using var again = new XNetTransformer(embedded);
        var keyed = model.First().Transform(test);
        var original = model.LastTransformer.Transform(keyed).GetColumn<float[]>("Score").ToArray();
        var restored = again.Transform(keyed).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < original.Length; i++)
        {
            CollectionAssert.AreEqual(original[i], restored[i], $"row {i}");
        }

        var info = XNetModelFile.ReadMLNetInfo(target);
        Assert.AreEqual("x-resnet-8-2", info.Architecture);
        Assert.AreEqual(new Architectures.ImageShape(1, 28, 28), info.InputShape);
        CollectionAssert.AreEqual(model.LastTransformer.Model.ClassNames.ToArray(), info.ClassNames.ToArray());
    }

    [TestMethod]
    public void TheSameModelSavesToTheSameBytes()
    {
        // Zip entries carry a time with 2-second resolution: saves 2.1 s apart would differ if it were the clock's.
        using var first = new MemoryStream();
        model.LastTransformer.Model.Save(first);
        Thread.Sleep(2100);
        using var second = new MemoryStream();
        model.LastTransformer.Model.Save(second);
        CollectionAssert.AreEqual(first.ToArray(), second.ToArray());
    }

    [TestMethod]
    public void TruncatedOrTamperedZipFailsClearly()
    {
        byte[] bytes = File.ReadAllBytes(zip);
        string truncated = Path.Combine(folder, "truncated.zip");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        string tampered = Path.Combine(folder, "tampered.zip");
        var damaged = (byte[])bytes.Clone();
        for (int i = bytes.Length / 3; i < bytes.Length / 3 + 64; i++)
        {
            damaged[i] ^= 0x5A;
        }

        File.WriteAllBytes(tampered, damaged);
        var filesBefore = Directory.GetFiles(folder).Order().ToArray();

        var fromMlNet = Assert.ThrowsExactly<FormatException>(() => Context.Model.Load(truncated, out _));
        StringAssert.Contains(fromMlNet.Message, "zip");
        var fromXNet = Assert.ThrowsExactly<InvalidDataException>(() => XNetModelFile.Load(truncated));
        StringAssert.Contains(fromXNet.Message, truncated);
        // .NET inflates zip entries without checking their CRC-32, and so does ML.NET's Model.Load; XNetModelFile checks them.
        var tamperedError = Assert.ThrowsExactly<InvalidDataException>(() => XNetModelFile.Load(tampered, "cpu"));
        StringAssert.Contains(tamperedError.Message, tampered);
        StringAssert.Contains(tamperedError.Message, "does not match its recorded CRC-32");
        CollectionAssert.AreEqual(filesBefore, Directory.GetFiles(folder).Order().ToArray());
    }

    [TestMethod]
    public void InitialModelContinuesFromTheSavedWeights()
    {
        var keyed = model.First().Transform(train);
        var options = TestData.SmallOptions(epochs: 1);
        options.InitialModel = zip;
        options.LearningRate = 1e-6f;
        options.Augmentation = Training.AugmentationKind.None;
        using var continued = Context.MulticlassClassification.Trainers.XNet(options).Fit(keyed);

        options.InitialModel = null;
        using var fresh = Context.MulticlassClassification.Trainers.XNet(options).Fit(keyed);

        var keyedTest = model.First().Transform(test);
        double original = Context.MulticlassClassification.Evaluate(model.LastTransformer.Transform(keyedTest)).MicroAccuracy;
        double after = Context.MulticlassClassification.Evaluate(continued.Transform(keyedTest)).MicroAccuracy;
        double scratch = Context.MulticlassClassification.Evaluate(fresh.Transform(keyedTest)).MicroAccuracy;
        // A learning rate of 1e-6 barely moves the weights (BatchNorm's running statistics move a little): a run that
        // started from the saved weights keeps their accuracy, one from scratch stays near chance.
        Assert.IsGreaterThan(0.2, original, $"saved {original}, continued {after}, from scratch {scratch}");
        Assert.AreEqual(original, after, 0.05, $"saved {original}, continued {after}, from scratch {scratch}");
        Assert.IsLessThan(original - 0.1, scratch, $"saved {original}, continued {after}, from scratch {scratch}");
        Assert.AreEqual(model.LastTransformer.Model.Seed, continued.Model.Seed);
        lock (Log)
        {
            Assert.IsTrue(Log.Any(m => m.Contains($"continuing from the weights of '{zip}'", StringComparison.Ordinal)));
        }

        var other = TestData.SmallOptions(epochs: 1);
        other.Architecture = "x-resnet-8-4";
        other.InitialModel = zip;
        var error = Assert.ThrowsExactly<ArgumentException>(() => Context.MulticlassClassification.Trainers.XNet(other).Fit(keyed));
        StringAssert.Contains(error.Message, "holds x-resnet-8-2");
        StringAssert.Contains(error.Message, "this run trains x-resnet-8-4");

        // Same architecture and shape, classes in another order: refused, naming both lists.
        var reordered = Context.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Fit(train).Transform(train);
        var same = TestData.SmallOptions(epochs: 1);
        same.InitialModel = zip;
        var classError = Assert.ThrowsExactly<ArgumentException>(() => Context.MulticlassClassification.Trainers.XNet(same).Fit(reordered));
        StringAssert.Contains(classError.Message, "(its classes: 10: " + string.Join(", ", model.LastTransformer.Model.ClassNames.Take(5)));
        StringAssert.Contains(classError.Message, "this run's: 10: Ankle boot, Bag, Coat");
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer transformer) =>
        transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { transformer };

    private static string WriteRows(IDataView data)
    {
        string path = Path.Combine(folder, $"rows-{Guid.NewGuid():N}.tsv");
        var rows = Context.Data.CreateEnumerable<FashionRow>(data, reuseRowObject: false);
        var lines = new List<string> { "features\t784" };
        lines.AddRange(rows.Select(r => r.Label + "\t" + string.Join(",", r.Features.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>Runs tests/XNet.Persistence.Probe (a process without X-Net or TorchSharp) and returns its tab-separated lines.</summary>
    internal static List<string[]> RunProbe(string modelPath, string rowsPath, bool typed = false)
    {
        string probe = BuiltPrograms.Dll("tests", "XNet.Persistence.Probe");
        Assert.IsTrue(File.Exists(probe), $"probe not built: {probe}");
        string[] args = typed ? [probe, "typed", modelPath, rowsPath] : [probe, modelPath, rowsPath];
        var (exitCode, stdout, stderr) = BuiltPrograms.Run("dotnet", args);
        Assert.AreEqual(0, exitCode, $"probe failed:\n{stdout}\n{stderr}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r').Split('\t')).ToList();
    }

    private sealed class FashionRow
    {
        public string Label { get; set; } = "";

        [VectorType(1, 28, 28)]
        public float[] Features { get; set; } = [];
    }

    private sealed class NamedPrediction
    {
        public string PredictedName { get; set; } = "";

        public float[] Score { get; set; } = [];
    }
}
