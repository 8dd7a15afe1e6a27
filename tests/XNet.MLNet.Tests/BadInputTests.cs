using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class BadInputTests
{
    private readonly MLContext context = new(seed: 0);

    [TestMethod]
    public void MissingLabelColumnIsNamed()
    {
        var data = context.Data.LoadFromEnumerable(new[] { new FeaturesOnly() });
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data));
        StringAssert.Contains(ex.Message, "Label column 'Label' was not found");
        StringAssert.Contains(ex.Message, "'Features'");
    }

    [TestMethod]
    public void NonKeyLabelSuggestsMapValueToKey()
    {
        var data = context.Data.LoadFromEnumerable(Rows(4, "a", "b"));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data));
        StringAssert.Contains(ex.Message, "Label column 'Label' has type String");
        StringAssert.Contains(ex.Message, "MapValueToKey(\"Label\")");
    }

    [TestMethod]
    public void FeatureLengthNotMatchingTheShapeIsNamed()
    {
        var data = Keyed(Rows(4, "a", "b"));
        var options = TestData.SmallOptions();
        options.ImageChannels = 1;
        options.ImageHeight = 5;
        options.ImageWidth = 5;
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(data));
        StringAssert.Contains(ex.Message, "Features column 'Features' has 16 values per row");
        StringAssert.Contains(ex.Message, "1x5x5 needs 25");
    }

    [TestMethod]
    public void OptionsThatContradictTheColumnsDeclaredShapeAreRefused()
    {
        var data = Keyed(context.Data.LoadFromEnumerable(new[] { new Declared { Label = "a" }, new Declared { Label = "b" } }));
        var options = TestData.SmallOptions();
        (options.ImageChannels, options.ImageHeight, options.ImageWidth) = (1, 6, 4);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(data));
        StringAssert.Contains(ex.Message, "Features column 'Features' declares its shape as (1, 4, 6), but ImageChannels, ImageHeight and ImageWidth give 1x6x4");
    }

    [TestMethod]
    public void UninferableShapeAsksForTheOptions()
    {
        var data = Keyed(context.Data.LoadFromEnumerable(new[] { new Odd { Label = "a" }, new Odd { Label = "b" } }));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data));
        StringAssert.Contains(ex.Message, "Cannot infer the image shape");
        StringAssert.Contains(ex.Message, "ImageChannels, ImageHeight and ImageWidth");
    }

    [TestMethod]
    [DataRow("ImageHeight", 0)]
    [DataRow("ImageWidth", -32)]
    [DataRow("ImageHeight", 100_000)]
    [DataRow("ImageChannels", 65)]
    public void AnImageSizeOutOfRangeIsNamedBeforeTheDataIsRead(string option, int value)
    {
        var options = TestData.SmallOptions();
        typeof(XNetTrainer.Options).GetField(option)!.SetValue(options, value);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, $"Option {option} = {value} must be from 1 to");
        Assert.AreEqual(option, ex.ParamName);
    }

    [TestMethod]
    public void AnArchitectureThatDoesNotBuildIsNamedBeforeTheDataIsRead()
    {
        var options = TestData.SmallOptions();
        options.Architecture = "x-resnet-99-4";
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "Option Architecture = 'x-resnet-99-4': ResNet (CIFAR) depth 99 must be 6n + 2");
        Assert.AreEqual("Architecture", ex.ParamName);
    }

    [TestMethod]
    public void ABadOptionIsRefusedAtTheCatalogAsMlNetsTrainersDo()
    {
        var options = TestData.SmallOptions();
        options.Epoch = 0;
        var fromOptions = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Trainers.XNet(options));
        Assert.AreEqual("Epoch", fromOptions.ParamName);
        var fromNames = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(architecture: "x-resnt-8-2"));
        StringAssert.Contains(fromNames.Message, "Unknown architecture 'x-resnt-8-2'");
    }

    [TestMethod]
    public void APathOfTheOtherKindSaysWhatItIs()
    {
        string folder = Directory.CreateTempSubdirectory("xnet-kinds-").FullName;
        string file = Path.Combine(folder, "notes.txt");
        File.WriteAllText(file, "not a dataset");
        try
        {
            var model = Assert.ThrowsExactly<IOException>(() => XNetModelFile.Load(folder));
            StringAssert.Contains(model.Message, $"Model file '{folder}' is a folder, not a file.");
            var data = Assert.ThrowsExactly<IOException>(() => Data.ImageDatasets.Load(context, file, "train"));
            StringAssert.Contains(data.Message, $"Dataset folder '{file}' is a file, not a folder.");
            Assert.ThrowsExactly<FileNotFoundException>(() => XNetModelFile.Load(Path.Combine(folder, "missing.xnet")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void AKeyFittedOnNoRowsPointsAtTheEmptyData()
    {
        var empty = context.Data.LoadFromEnumerable(Array.Empty<TestData.PixelRow>());
        var pipeline = context.Transforms.Conversion.MapValueToKey("Label").Append(context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => pipeline.Fit(empty));
        StringAssert.Contains(ex.Message, "Label column 'Label' has 1 classes; expected at least 2");
        StringAssert.Contains(ex.Message, "check that the data is not empty");
    }

    [TestMethod]
    public void EmptyDataIsRefused()
    {
        var keys = context.Transforms.Conversion.MapValueToKey("Label").Fit(context.Data.LoadFromEnumerable(Rows(4, "a", "b")));
        var empty = keys.Transform(context.Data.LoadFromEnumerable(Array.Empty<TestData.PixelRow>()));
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(empty));
        StringAssert.Contains(ex.Message, "The training data has no rows with a label in column 'Label'");
    }

    [TestMethod]
    public void NaNPixelNamesColumnRowAndPixel()
    {
        var rows = Rows(6, "a", "b").ToArray();
        rows[3].Features[7] = float.NaN;
        var ex = Assert.ThrowsExactly<InvalidOperationException>(
            () => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(Keyed(rows)));
        StringAssert.Contains(ex.Message, "Features column 'Features' of the training data has the value NaN at row 3, pixel 7");
    }

    [TestMethod]
    public void CompressionAboveInputChannelsNamesTheLayer()
    {
        var options = TestData.SmallOptions();
        options.Architecture = "x-resnet-8-32";
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
        StringAssert.Contains(ex.Message, "e=32");
    }

    [TestMethod]
    public void UnknownArchitectureListsCloseNames()
    {
        var options = TestData.SmallOptions();
        options.Architecture = "xresnet-20-4";
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "Unknown architecture 'xresnet-20-4'");
        StringAssert.Contains(ex.Message, "x-resnet-20-4");
    }

    [TestMethod]
    [DataRow(nameof(XNetTrainer.Options.BatchSize), 0)]
    [DataRow(nameof(XNetTrainer.Options.Epoch), 0)]
    [DataRow(nameof(XNetTrainer.Options.Epoch), -3)]
    [DataRow(nameof(XNetTrainer.Options.LearningRate), 0)]
    [DataRow(nameof(XNetTrainer.Options.LearningRate), -0.1)]
    public void NonPositiveOptionIsNamed(string option, double value)
    {
        var options = TestData.SmallOptions();
        switch (option)
        {
            case nameof(XNetTrainer.Options.BatchSize): options.BatchSize = (int)value; break;
            case nameof(XNetTrainer.Options.Epoch): options.Epoch = (int)value; break;
            default: options.LearningRate = (float)value; break;
        }

        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        Assert.AreEqual(option, ex.ParamName, "the error names the option as the user set it");
        StringAssert.Contains(ex.Message, $"Option {option} = ");
        StringAssert.Contains(ex.Message, "must be");
    }

    [TestMethod]
    public void CompressionBelowOneNamesTheLayer()
    {
        var options = TestData.SmallOptions();
        options.Architecture = "x-resnet-8-0.5";
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
        StringAssert.Contains(ex.Message, "e=0.5 must lie in [1, C_in=16]");
    }

    [TestMethod]
    public void UnknownDeviceIsNamed()
    {
        var options = TestData.SmallOptions();
        options.Device = "tpu";
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "Option Device = tpu");
        StringAssert.Contains(ex.Message, "cuda:N");
        Assert.AreEqual(nameof(XNetTrainer.Options.Device), ex.ParamName);
    }

    [TestMethod]
    public void MissingFeaturesColumnIsNamed()
    {
        var data = Keyed(context.Data.LoadFromEnumerable(new[] { new LabelOnly { Label = "a" }, new LabelOnly { Label = "b" } }));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data));
        StringAssert.Contains(ex.Message, "Features column 'Features' was not found");
    }

    [TestMethod]
    public void TextFeaturesAreRefusedWithTheExpectedType()
    {
        var data = Keyed(context.Data.LoadFromEnumerable(new[] { new TextFeatures { Label = "a" }, new TextFeatures { Label = "b" } }));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data));
        StringAssert.Contains(ex.Message, "Features column 'Features'");
        StringAssert.Contains(ex.Message, "Single");
    }

    [TestMethod]
    public void SchemaCheckAndFitSayTheSame()
    {
        // A pipeline's schema check (GetOutputSchema, run before anything is fitted) and Fit itself report a wrong column
        // with one message: the columns present, and that images are taken as well as pixels.
        var trainer = context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions());
        var text = Keyed(context.Data.LoadFromEnumerable(new[] { new TextFeatures { Label = "a" }, new TextFeatures { Label = "b" } }));
        var fromSchema = Assert.ThrowsExactly<ArgumentException>(() => trainer.GetOutputSchema(TestData.ShapeOf(text.Schema)));
        var fromFit = Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(text));
        Assert.AreEqual(fromFit.Message, fromSchema.Message);
        StringAssert.Contains(fromSchema.Message, "Features column 'Features' has type String; expected pixels");
        StringAssert.Contains(fromSchema.Message, "or images (MLImage from LoadImages, or encoded bytes from LoadRawImageBytes)");

        var unlabelled = context.Data.LoadFromEnumerable(new[] { new FeaturesOnly() });
        var missing = Assert.ThrowsExactly<ArgumentException>(() => trainer.GetOutputSchema(TestData.ShapeOf(unlabelled.Schema)));
        StringAssert.Contains(missing.Message, "Label column 'Label' was not found in the input schema; columns present: 'Features' (Vector<Single");

        var unkeyed = context.Data.LoadFromEnumerable(Rows(4, "a", "b"));
        var notKey = Assert.ThrowsExactly<ArgumentException>(() => trainer.GetOutputSchema(TestData.ShapeOf(unkeyed.Schema)));
        Assert.AreEqual(Assert.ThrowsExactly<ArgumentException>(() => trainer.Fit(unkeyed)).Message, notKey.Message);
    }

    [TestMethod]
    public void InfinitePixelNamesColumnRowAndPixel()
    {
        var rows = Rows(6, "a", "b").ToArray();
        rows[5].Features[2] = float.PositiveInfinity;
        var ex = Assert.ThrowsExactly<InvalidOperationException>(
            () => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(Keyed(rows)));
        StringAssert.Contains(ex.Message, "has the value Infinity at row 5, pixel 2");
    }

    [TestMethod]
    public void LabelOutsideItsKeyRangeIsRefusedByTheEngineAndSkippedWithACountThroughMlNet()
    {
        // The engine's own input: a class index outside [0, classes) is an error that names it.
        var ex = Assert.ThrowsExactly<ArgumentException>(
            () => new XNet.MLNet.Training.ImageSet(new XNet.Architectures.ImageShape(1, 4, 4), new float[32], new[] { 1, 7 }, 3));
        StringAssert.Contains(ex.Message, "label 7 of image 1 is outside [0, 3)");

        // Through IDataView, ML.NET itself reads a key beyond its type's count as missing (0): the row is skipped and
        // the count is logged, as for any unlabelled row.
        var data = context.Data.LoadFromEnumerable(new[]
        {
            new RawKey { Label = 1, Features = new float[16] },
            new RawKey { Label = 2, Features = Enumerable.Repeat(9f, 16).ToArray() },
            new RawKey { Label = 7, Features = new float[16] },
        });
        var log = new List<string>();
        context.Log += (_, e) => log.Add(e.Message);
        using var model = context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data);
        Assert.IsTrue(log.Any(m => m.Contains("read 2 training images") && m.Contains("1 rows without a label skipped")), string.Join("\n", log));
    }

    [TestMethod]
    public void ValidationSetWithAnotherShapeIsNamed()
    {
        var options = TestData.SmallOptions();
        options.ValidationSet = Keyed(context.Data.LoadFromEnumerable(new[] { new Odd { Label = "a" }, new Odd { Label = "b" } }));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "Features column 'Features' has 15 values per row, but the image shape 1x4x4 needs 16");
    }

    [TestMethod]
    public void CudaOnACpuBuildSaysSo()
    {
        if (TorchSharp.torch.cuda.is_available())
        {
            Assert.Inconclusive("This machine has CUDA.");
        }

        var options = TestData.SmallOptions();
        options.Device = "cuda";
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "CUDA is not available");
    }

    [TestMethod]
    public void ScoringDataWithTheWrongFeatureSizeIsNamed()
    {
        using var trained = context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(Keyed(Rows(8, "a", "b")));
        var other = context.Data.LoadFromEnumerable(new[] { new Odd { Label = "a" } });
        var ex = Assert.ThrowsExactly<ArgumentException>(() => trained.Transform(other));
        StringAssert.Contains(ex.Message, "Features column 'Features' has 15 values per row, but the image shape 1x4x4 needs 16");
    }

    [TestMethod]
    public void TrainingDataOfOneClassIsRefusedNamingIt()
    {
        var mapping = context.Transforms.Conversion.MapValueToKey("Label").Fit(context.Data.LoadFromEnumerable(Rows(4, "a", "b")));
        var onlyA = mapping.Transform(context.Data.LoadFromEnumerable(Rows(4, "a")));
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(onlyA));
        StringAssert.Contains(ex.Message, "one class only ('a') in label column 'Label'");
    }

    [TestMethod]
    public void ValidationDataWithOtherClassesIsRefusedNamingBoth()
    {
        var train = Keyed(Rows(4, "a", "b"));
        var validation = Keyed(Rows(4, "b", "a"));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(train, validation));
        StringAssert.Contains(ex.Message, "The validation data's classes in label column 'Label' (2: b, a) are not the training data's (2: a, b)");
    }

    private IDataView Keyed(IEnumerable<TestData.PixelRow> rows) => Keyed(context.Data.LoadFromEnumerable(rows));

    private IDataView Keyed(IDataView data) => context.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);

    private static IEnumerable<TestData.PixelRow> Rows(int count, params string[] labels) =>
        Enumerable.Range(0, count).Select(i => new TestData.PixelRow
        {
            Label = labels[i % labels.Length],
            Features = Enumerable.Range(0, 16).Select(p => (float)((i * 16 + p) % 255)).ToArray(),
        });

    private sealed class LabelOnly
    {
        public string Label { get; set; } = "";
    }

    private sealed class TextFeatures
    {
        public string Label { get; set; } = "";

        public string Features { get; set; } = "pixels";
    }

    private sealed class Declared
    {
        public string Label { get; set; } = "";

        [VectorType(1, 4, 6)]
        public float[] Features { get; set; } = new float[24];
    }

    private sealed class RawKey
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(16)]
        public float[] Features { get; set; } = new float[16];
    }

    private sealed class FeaturesOnly
    {
        [VectorType(16)]
        public float[] Features { get; set; } = new float[16];
    }

    private sealed class Odd
    {
        public string Label { get; set; } = "";

        [VectorType(15)]
        public float[] Features { get; set; } = new float[15];
    }
}
