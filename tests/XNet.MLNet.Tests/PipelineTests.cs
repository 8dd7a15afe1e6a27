using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;
using XNet.MLNet.Training;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class PipelineTests
{
    private static readonly MLContext Context = new(seed: 1);
    private static IDataView train = null!;
    private static IDataView test = null!;
    private static TransformerChain<XNetTransformer> model = null!;
    private static readonly List<string> Log = new();

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        Context.Log += (_, e) =>
        {
            lock (Log)
            {
                Log.Add(e.Message);
            }
        };
        train = TestData.WithTextLabels(Context, TestData.Take(Context, "train", 600));
        test = TestData.WithTextLabels(Context, TestData.Take(Context, "t10k", 200));
        var options = TestData.SmallOptions(epochs: 4);
        var pipeline = Context.Transforms.Conversion.MapValueToKey("Label")
            .Append(Context.MulticlassClassification.Trainers.XNet(options));
        model = pipeline.Fit(train);
    }

    [ClassCleanup]
    public static void Dispose() => model.LastTransformer.Dispose();

    [TestMethod]
    public void PipelineTrainsAndEvaluatesWithMlNetMetrics()
    {
        var scored = model.Transform(test);
        var metrics = Context.MulticlassClassification.Evaluate(scored);

        Assert.HasCount(10, metrics.PerClassLogLoss);
        Assert.AreEqual(10, metrics.ConfusionMatrix.NumberOfClasses);
        Assert.AreEqual(200, metrics.ConfusionMatrix.Counts.Sum(row => row.Sum()));
        Assert.IsTrue(double.IsFinite(metrics.LogLoss));
        // 4 epochs of 600 images: far above chance (0.1), as it must be if labels, scores and key order line up.
        Assert.IsGreaterThan(0.5, metrics.MicroAccuracy);
    }

    [TestMethod]
    public void ScoreAndPredictedLabelCarryTheClassNames()
    {
        var schema = model.Transform(test).Schema;
        var score = schema["Score"];
        var predicted = schema["PredictedLabel"];

        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 10), score.Type);
        Assert.IsInstanceOfType<KeyDataViewType>(predicted.Type);
        Assert.AreEqual(10UL, ((KeyDataViewType)predicted.Type).Count);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        score.GetSlotNames(ref slotNames);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        predicted.GetKeyValues(ref keyValues);
        VBuffer<ReadOnlyMemory<char>> labelValues = default;
        schema["Label"].GetKeyValues(ref labelValues);
        CollectionAssert.AreEqual(labelValues.DenseValues().Select(v => v.ToString()).ToArray(),
            slotNames.DenseValues().Select(v => v.ToString()).ToArray());
        CollectionAssert.AreEqual(labelValues.DenseValues().Select(v => v.ToString()).ToArray(),
            keyValues.DenseValues().Select(v => v.ToString()).ToArray());
    }

    [TestMethod]
    public void MapKeyToValueTurnsPredictionsIntoClassNames()
    {
        var named = Context.Transforms.Conversion.MapKeyToValue("PredictedName", "PredictedLabel")
            .Fit(model.Transform(test)).Transform(model.Transform(test));
        var names = named.GetColumn<string>("PredictedName").ToArray();

        Assert.HasCount(200, names);
        Assert.IsTrue(names.All(n => FashionMnist.ClassNames.Contains(n)), string.Join(", ", names.Distinct()));
        Assert.IsGreaterThan(3, names.Distinct().Count());
    }

    [TestMethod]
    public void PredictionEngineMatchesBatchScoring()
    {
        var rows = Context.Data.CreateEnumerable<FashionRow>(test, reuseRowObject: false).Take(3).ToArray();
        var batchScores = model.Transform(test).GetColumn<float[]>("Score").Take(3).ToArray();
        var withNames = model.Append(Context.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(model.Transform(test)));
        // ML.NET's default engine owns (and disposes) its transformer; this model is shared by the other tests.
        using var engine = Context.Model.CreatePredictionEngine<FashionRow, FashionPrediction>(
            withNames, new PredictionEngineOptions { OwnsTransformer = false });
        VBuffer<ReadOnlyMemory<char>> slots = default;
        model.Transform(test).Schema["Score"].GetSlotNames(ref slots);
        var classOfSlot = slots.DenseValues().Select(v => v.ToString()).ToArray();

        for (int i = 0; i < rows.Length; i++)
        {
            var prediction = engine.Predict(rows[i]);
            CollectionAssert.Contains(FashionMnist.ClassNames.ToArray(), prediction.PredictedLabel);
            Assert.AreEqual(1.0, prediction.Score.Sum(), 1e-4);
            for (int c = 0; c < 10; c++)
            {
                Assert.AreEqual(batchScores[i][c], prediction.Score[c], 1e-5, $"row {i}, class {c}");
            }

            Assert.AreEqual(classOfSlot[Array.IndexOf(prediction.Score, prediction.Score.Max())], prediction.PredictedLabel);
        }
    }

    [TestMethod]
    public void TrainingLogsReachMlContextLog()
    {
        lock (Log)
        {
            Assert.IsTrue(Log.Any(m => m.Contains("X-Net epoch 4/4", StringComparison.Ordinal)), string.Join("\n", Log));
            Assert.IsTrue(Log.Any(m => m.Contains("read 600 training images of 1x28x28 in 10 classes", StringComparison.Ordinal)));
        }
    }

    [TestMethod]
    public void SavedModelScoresTheSame()
    {
        var xnet = model.LastTransformer;
        string path = Path.Combine(Path.GetTempPath(), $"xnet-{Guid.NewGuid():N}.xnet");
        try
        {
            xnet.Model.Save(path);
            using var loaded = new XNetTransformer(XNetModelFile.Load(path, "cpu"));
            var keyed = model.First().Transform(test);

            var before = xnet.Transform(keyed).GetColumn<float[]>("Score").ToArray();
            var after = loaded.Transform(keyed).GetColumn<float[]>("Score").ToArray();
            Assert.AreEqual("x-resnet-8-2", loaded.Model.Architecture);
            CollectionAssert.AreEqual(xnet.Model.ClassNames.ToArray(), loaded.Model.ClassNames.ToArray());
            for (int i = 0; i < before.Length; i++)
            {
                CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ImageFileScoresLikeItsPixelVector()
    {
        // trouser.png is the first trouser (label 1) of the t10k subset, written as an 8-bit grayscale PNG.
        var (images, labels) = FashionMnist.Files(TestData.Directory, "t10k");
        int index = Array.IndexOf(IdxFile.Read(labels, 1).Data, (byte)1);
        var pixels = IdxFile.Read(images, 3).Data.Skip(index * 784).Take(784).Select(b => (float)b).ToArray();
        var vector = Context.Data.LoadFromEnumerable(new[] { new FashionRow { Features = pixels } });
        var expected = model.LastTransformer.Transform(vector).GetColumn<float[]>("Score").Single();

        var actual = ImageFileInput.Score(Context, model.LastTransformer, Path.Combine(AppContext.BaseDirectory, "data", "images", "trouser.png"));

        Assert.HasCount(10, actual);
        for (int c = 0; c < 10; c++)
        {
            Assert.AreEqual(expected[c], actual[c], 1e-3, $"class {c}");
        }
    }

    [TestMethod]
    public void UnreadableImageFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"xnet-{Guid.NewGuid():N}.png");
        File.WriteAllText(path, "not a png");
        try
        {
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => ImageFileInput.Score(Context, model.LastTransformer, path));
            StringAssert.Contains(ex.Message, path);
            Assert.ThrowsExactly<FileNotFoundException>(() => ImageFileInput.Score(Context, model.LastTransformer, path + ".missing"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void CorruptModelFileIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"xnet-{Guid.NewGuid():N}.xnet");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        try
        {
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => XNetModelFile.Load(path, "cpu"));
            StringAssert.Contains(ex.Message, path);
            StringAssert.Contains(ex.Message, "is neither an X-Net model file");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void MlNetModelSaveKeepsCustomColumnNames()
    {
        // Not disposed: it shares the network of the class's model.
        var renamed = new XNetTransformer(model.LastTransformer.Model, scoreColumnName: "Probabilities", predictedLabelColumnName: "Class");
        var keyed = model.First().Transform(test);
        using var stream = new MemoryStream();
        Context.Model.Save(renamed, keyed.Schema, stream);
        stream.Position = 0;
        var loaded = Context.Model.Load(stream, out _);
        try
        {
            var schema = loaded.Transform(keyed).Schema;
            Assert.IsNull(schema.GetColumnOrNull("Score"));
            Assert.IsNull(schema.GetColumnOrNull("PredictedLabel"));
            Assert.AreEqual(new KeyDataViewType(typeof(uint), 10), schema["Class"].Type);
            VBuffer<ReadOnlyMemory<char>> keyValues = default;
            schema["Class"].GetKeyValues(ref keyValues);
            CollectionAssert.AreEqual(model.LastTransformer.Model.ClassNames.ToArray(), keyValues.DenseValues().Select(v => v.ToString()).ToArray());
            var expected = renamed.Transform(keyed).GetColumn<uint>("Class").ToArray();
            CollectionAssert.AreEqual(expected, loaded.Transform(keyed).GetColumn<uint>("Class").ToArray());
            Assert.AreEqual(10, loaded.Transform(keyed).GetColumn<float[]>("Probabilities").First().Length);
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    [TestMethod]
    public void EstimatorOutputSchemaAddsScoreAndPredictedLabel()
    {
        var keyed = Context.Transforms.Conversion.MapValueToKey("Label");
        var shape = keyed.GetOutputSchema(TestData.ShapeOf(train.Schema));
        var output = Context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).GetOutputSchema(shape);

        var score = output.Single(c => c.Name == "Score");
        var predicted = output.Single(c => c.Name == "PredictedLabel");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.AreEqual(NumberDataViewType.Single, score.ItemType);
        Assert.IsTrue(predicted.IsKey);
    }

    private sealed class FashionRow
    {
        public string Label { get; set; } = "";

        [VectorType(1, 28, 28)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private sealed class FashionPrediction
    {
        public string PredictedLabel { get; set; } = "";

        public float[] Score { get; set; } = Array.Empty<float>();
    }
}
