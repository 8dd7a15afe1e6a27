using TorchSharp;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>The fast exact executions of the expander layers against the reference (scatter + dense).</summary>
[TestClass]
public sealed class FastExpanderTests
{
    [TestMethod]
    [DataRow(16, 32, 3, 1, 1, 4.0, 2, 1L)]
    [DataRow(16, 32, 3, 1, 1, 4.0, 2, 2L)]
    [DataRow(24, 48, 3, 2, 1, 4.0, 3, 3L)]
    [DataRow(32, 16, 3, 2, 1, 2.0, 4, 4L)]
    [DataRow(96, 24, 3, 1, 1, 2.0, 2, 5L)]
    [DataRow(64, 64, 1, 1, 0, 4.0, 2, 6L)]
    [DataRow(48, 96, 1, 2, 0, 2.0, 1, 7L)]
    public void BlockGroupedMatchesTheReferenceOnStructuredGraphs(int cin, int cout, int k, int stride, int padding, double e,
        int copies, long seed)
    {
        var graph = ExpanderGraph.CreateStructured("block.conv", cin, cout, e, seed, copies);
        Assert.AreEqual(copies * cin / graph.Degree, graph.BlockCount, "the graph keeps its structure");
        AssertExecutionMatchesReference(graph, k, stride, padding, ExpanderExecution.BlockGrouped, seed, bias: false);
    }

    [TestMethod]
    [DataRow(16, 12, 3, 1, 1, 4.0, 1L)]
    [DataRow(12, 8, 3, 2, 1, 3.0, 2L)]
    public void BlockGroupedIsExactOnThePaperGraphToo(int cin, int cout, int k, int stride, int padding, double e, long seed)
    {
        var graph = ExpanderGraph.Create("conv", cin, cout, e, seed);
        Assert.AreEqual(cout, graph.BlockCount, "a random graph has one block per output");
        AssertExecutionMatchesReference(graph, k, stride, padding, ExpanderExecution.BlockGrouped, seed, bias: true);
    }

    [TestMethod]
    [DataRow(64, 64, 1, 4.0, 1L, false)]
    [DataRow(48, 96, 2, 2.0, 2L, false)]
    [DataRow(20, 30, 1, 3.0, 3L, true)]
    [DataRow(128, 32, 2, 16.0, 4L, true)]
    public void GatherMatmulMatchesTheReferenceForOneByOneConvs(int cin, int cout, int stride, double e, long seed, bool bias)
    {
        var graph = ExpanderGraph.Create("pw", cin, cout, e, seed);
        AssertExecutionMatchesReference(graph, 1, stride, 0, ExpanderExecution.GatherMatmul, seed, bias);
    }

    [TestMethod]
    [DataRow(20, 6, 4.0, 1L, false)]
    [DataRow(64, 32, 2.0, 2L, true)]
    public void LinearGatherMatmulMatchesTheReference(int inputs, int outputs, double e, long seed, bool bias)
    {
        manual_seed(seed);
        using var layer = new ExpanderLinear(ExpanderGraph.Create("fc", inputs, outputs, e, seed), bias);
        using var x1 = randn(5, inputs).requires_grad_(true);
        using var x2 = x1.detach().clone().requires_grad_(true);
        using var upstream = randn(5, outputs);

        using var y1 = layer.forward(x1);
        (y1 * upstream).sum().backward();
        using var referenceWeightGrad = layer.Weight.grad!.clone();
        layer.zero_grad();
        layer.Execution = ExpanderExecution.GatherMatmul;
        using var y2 = layer.forward(x2);
        (y2 * upstream).sum().backward();

        AssertClose(y1, y2, "outputs");
        AssertClose(x1.grad!, x2.grad!, "input gradients");
        AssertClose(referenceWeightGrad, layer.Weight.grad!, "weight gradients");
    }

    [TestMethod]
    public void AutoRunsStructuredGraphsGroupedAndPaperGraphsThroughTheReference()
    {
        using var structured = new ExpanderConv2d(ExpanderGraph.CreateStructured("a", 32, 32, 4, 0), 3, padding: 1);
        using var paper = new ExpanderConv2d("a", 32, 32, 3, 4, 0, padding: 1);

        Assert.AreEqual(ExpanderExecution.Auto, structured.Execution);
        Assert.AreEqual(ExpanderExecution.BlockGrouped, structured.ResolvedExecution);
        Assert.AreEqual(ExpanderExecution.Reference, paper.ResolvedExecution);
        paper.Execution = ExpanderExecution.BlockGrouped;
        Assert.AreEqual(ExpanderExecution.BlockGrouped, paper.ResolvedExecution, "the manual override wins");
    }

    [TestMethod]
    public void GatherMatmulIsRefusedForKernelsLargerThanOne()
    {
        using var layer = new ExpanderConv2d("layer1.0.conv1", 16, 16, 3, 4, 0, padding: 1);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => layer.Execution = ExpanderExecution.GatherMatmul);
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
    }

    [TestMethod]
    public void LoadingAPaperGraphIntoAStructuredLayerSwitchesAutoBackToTheReference()
    {
        using var paper = new ExpanderConv2d("l", 16, 16, 3, 4, seed: 1, padding: 1);
        using var structured = new ExpanderConv2d(ExpanderGraph.CreateStructured("l", 16, 16, 4, seed: 1), 3, padding: 1);
        using var x = randn(2, 16, 6, 6);
        using (structured.forward(x))
        {
            Assert.AreEqual(ExpanderExecution.BlockGrouped, structured.ResolvedExecution);
        }

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            paper.save(writer);
        }

        stream.Position = 0;
        using (var reader = new BinaryReader(stream))
        {
            structured.load(reader);
        }

        Assert.AreEqual(ExpanderExecution.Reference, structured.ResolvedExecution);
        using var expected = paper.forward(x);
        using var actual = structured.forward(x);
        AssertClose(expected, actual, "outputs after loading");
    }

    /// <summary>
    /// Compares in float64 (the forms are algebraically identical, so they agree to rounding, far inside 1e-5) and in float32
    /// (within 1e-5 of the largest reference magnitude: the weight gradient sums over batch and positions).
    /// </summary>
    private static void AssertExecutionMatchesReference(ExpanderGraph graph, int k, int stride, int padding, ExpanderExecution execution,
        long seed, bool bias)
    {
        AssertExecutionMatchesReference(graph, k, stride, padding, execution, seed, bias, ScalarType.Float64);
        AssertExecutionMatchesReference(graph, k, stride, padding, execution, seed, bias, ScalarType.Float32);
    }

    private static void AssertExecutionMatchesReference(ExpanderGraph graph, int k, int stride, int padding, ExpanderExecution execution,
        long seed, bool bias, ScalarType dtype)
    {
        manual_seed(seed);
        using var layer = new ExpanderConv2d(graph, k, stride, padding, bias);
        layer.to(dtype);
        if (bias)
        {
            using (no_grad())
            {
                layer.Bias!.normal_();
            }
        }

        using var x1 = randn(3, graph.InputChannels, 9, 9, dtype: dtype).requires_grad_(true);
        using var x2 = x1.detach().clone().requires_grad_(true);

        using var y1 = layer.ReferenceForward(x1);
        using var upstream = randn_like(y1);
        (y1 * upstream).sum().backward();
        using var referenceWeightGrad = layer.Weight.grad!.clone();
        using var referenceBiasGrad = bias ? layer.Bias!.grad!.clone() : null;
        layer.zero_grad();

        layer.Execution = execution;
        Assert.AreEqual(execution, layer.ResolvedExecution);
        using var y2 = layer.forward(x2);
        (y2 * upstream).sum().backward();

        CollectionAssert.AreEqual(y1.shape, y2.shape);
        AssertClose(y1, y2, "outputs");
        AssertClose(x1.grad!, x2.grad!, "input gradients");
        AssertClose(referenceWeightGrad, layer.Weight.grad!, "weight gradients");
        if (bias)
        {
            AssertClose(referenceBiasGrad!, layer.Bias!.grad!, "bias gradients");
        }
    }

    /// <summary>Float64: |difference| &lt;= 1e-5. Float32: |difference| &lt;= 1e-5 x max(1, max |expected|).</summary>
    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        using var scope = NewDisposeScope();
        Assert.AreEqual(expected.dtype, actual.dtype);
        double difference = (expected - actual).abs().max().to_type(ScalarType.Float64).item<double>();
        double scale = expected.dtype == ScalarType.Float64 ? 1 : Math.Max(1, expected.abs().max().to_type(ScalarType.Float64).item<double>());
        Assert.IsLessThanOrEqualTo(1e-5 * scale, difference, $"{what} ({expected.dtype}) differ by {difference:G3} at scale {scale:G3}");
    }
}
