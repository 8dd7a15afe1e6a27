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
    public void UninferableShapeAsksForTheOptions()
    {
        var data = Keyed(context.Data.LoadFromEnumerable(new[] { new Odd { Label = "a" }, new Odd { Label = "b" } }));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data));
        StringAssert.Contains(ex.Message, "Cannot infer the image shape");
        StringAssert.Contains(ex.Message, "ImageChannels, ImageHeight and ImageWidth");
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
    public void InvalidOptionIsNamed()
    {
        var options = TestData.SmallOptions();
        options.BatchSize = 0;
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => context.MulticlassClassification.Trainers.XNet(options).Fit(Keyed(Rows(4, "a", "b"))));
        StringAssert.Contains(ex.Message, "BatchSize");
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

    private IDataView Keyed(IEnumerable<TestData.PixelRow> rows) => Keyed(context.Data.LoadFromEnumerable(rows));

    private IDataView Keyed(IDataView data) => context.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);

    private static IEnumerable<TestData.PixelRow> Rows(int count, params string[] labels) =>
        Enumerable.Range(0, count).Select(i => new TestData.PixelRow
        {
            Label = labels[i % labels.Length],
            Features = Enumerable.Range(0, 16).Select(p => (float)((i * 16 + p) % 255)).ToArray(),
        });

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
