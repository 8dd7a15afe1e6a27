using TorchSharp;
using XNet.Architectures.Export;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

[TestClass]
public sealed class OnnxExportableTests
{
    /// <summary>
    /// Every module class of this assembly (models, blocks, layers) writes its own ONNX graph next to its forward, so a
    /// new block without an export fails here, before the ONNX Runtime parity test over the zoo (XNet.MLNet.Tests).
    /// </summary>
    [TestMethod]
    public void EveryModuleClassOfTheAssemblyHasAnOnnxExport()
    {
        var modules = typeof(ModelZoo).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && typeof(nn.Module).IsAssignableFrom(t))
            .ToList();

        Assert.IsGreaterThanOrEqualTo(13, modules.Count, $"module classes found: {string.Join(", ", modules.Select(t => t.Name))}");
        var missing = modules.Where(t => !typeof(IOnnxExportable).IsAssignableFrom(t)).Select(t => t.FullName).ToList();
        Assert.IsEmpty(missing, $"module classes without IOnnxExportable: {string.Join(", ", missing)}");
    }

    [TestMethod]
    public void FoldingABatchNormScalesEachOutputChannelAndShiftsItsBias()
    {
        var conv = new ConvolutionSpec("conv", new float[] { 1, 2, 3, 4 }, new long[] { 2, 2, 1, 1 }, new float[] { 0.5f, -1 },
            new long[] { 1, 1 }, new long[] { 0, 0 }, 1, null);
        var norm = new BatchNormSpec("bn", Scale: new[] { 2f, 0.5f }, Bias: new[] { 1f, 0f }, Mean: new[] { 0.5f, 1f },
            Variance: new[] { 3f, 0f }, Epsilon: 1f);

        var folded = conv.Fold(norm);

        // Channel 0: scale 2 / sqrt(3 + 1) = 1; channel 1: 0.5 / sqrt(0 + 1) = 0.5.
        CollectionAssert.AreEqual(new[] { 1f, 2f, 1.5f, 2f }, folded.Weight);
        CollectionAssert.AreEqual(new[] { (0.5f - 0.5f) * 1 + 1, (-1f - 1f) * 0.5f + 0 }, folded.Bias);
        Assert.AreEqual("conv+bn", folded.Path);
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 4 }, conv.Weight, "the original is left alone");
    }

    [TestMethod]
    public void FoldingABatchNormOfAnotherWidthIsRefusedNamingBothLayers()
    {
        var conv = new ConvolutionSpec("layer1.conv", new float[4], new long[] { 4, 1, 1, 1 }, null, new long[] { 1, 1 }, new long[] { 0, 0 }, 1, null);
        var norm = new BatchNormSpec("layer1.bn", new float[3], new float[3], new float[3], new float[3], 1e-5f);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => conv.Fold(norm));
        StringAssert.Contains(error.Message, "'layer1.bn' has 3 channels");
        StringAssert.Contains(error.Message, "'layer1.conv' before it has 4");
    }
}
