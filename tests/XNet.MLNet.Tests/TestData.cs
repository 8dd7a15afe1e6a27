using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;

namespace XNet.MLNet.Tests;

/// <summary>The embedded Fashion-MNIST subset, and small in-memory views built for single tests.</summary>
internal static class TestData
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    public static IDataView Load(MLContext mlContext, string split)
    {
        var (images, labels) = FashionMnist.Files(Directory, split);
        return IdxDataset.Load(mlContext, images, labels, FashionMnist.ClassNames);
    }

    /// <summary>The first <paramref name="rows"/> images of a split, shuffled deterministically so every class appears.</summary>
    public static IDataView Take(MLContext mlContext, string split, int rows) =>
        mlContext.Data.TakeRows(mlContext.Data.ShuffleRows(Load(mlContext, split), seed: 1), rows);

    /// <summary>The subset with its label turned back into text, the shape a user's data usually has before MapValueToKey.</summary>
    public static IDataView WithTextLabels(MLContext mlContext, IDataView keyed) =>
        mlContext.Transforms.Conversion.MapKeyToValue("Label").Fit(keyed).Transform(keyed);

    /// <summary>The schema shape an estimator's GetOutputSchema receives for <paramref name="schema"/>.</summary>
    public static SchemaShape ShapeOf(DataViewSchema schema) => CreateShape(null, schema);

    // ML.NET keeps SchemaShape.Create internal; estimators only ever receive shapes from other estimators.
    [System.Runtime.CompilerServices.UnsafeAccessor(System.Runtime.CompilerServices.UnsafeAccessorKind.StaticMethod, Name = "Create")]
    private static extern SchemaShape CreateShape(SchemaShape? type, DataViewSchema schema);

    public static XNetTrainer.Options SmallOptions(int epochs = 1) => new()
    {
        Architecture = "x-resnet-8-2",
        Epoch = epochs,
        BatchSize = 32,
        LearningRate = 0.05f,
        Seed = 3,
        Device = "cpu",
    };

    public sealed class PixelRow
    {
        public string Label { get; set; } = "";

        [VectorType(16)]
        public float[] Features { get; set; } = new float[16];
    }
}
