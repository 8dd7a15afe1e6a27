using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Tests;

/// <summary>
/// ML.NET's own <c>mlContext.Model.ConvertToOnnx</c> cannot reach an X-Net (its converter works through an interface
/// internal to ML.NET) and, left alone, writes a graph with Score and PredictedLabel as inputs; the X-Net refuses it with
/// a message that names ExportOnnx, and scoring outside the converter is unaffected.
/// </summary>
[TestClass]
public sealed class ConvertToOnnxTests
{
    [TestMethod]
    public void ConvertToOnnxOfAnXNetPipelineIsRefusedNamingExportOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.WithTextLabels(ml, TestData.Take(ml, "train", 64));
        using var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.XNet(TestData.SmallOptions(epochs: 1)))
            .Fit(data);
        using var stream = new MemoryStream();

        var error = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, data, stream));

        StringAssert.Contains(error.Message, "ConvertToOnnx cannot convert a pipeline with an X-Net");
        StringAssert.Contains(error.Message, "ExportOnnx");
        Assert.AreEqual(64, model.Transform(data).GetColumn<uint>("PredictedLabel").Count());
    }
}
