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
    [DataRow(16, 16, 3, 1, 1, 4.0, 32, 32, false, 1L)]
    [DataRow(16, 32, 3, 2, 1, 4.0, 32, 32, false, 2L)]
    [DataRow(32, 64, 3, 2, 1, 4.0, 14, 14, true, 3L)]
    [DataRow(64, 64, 3, 1, 1, 8.0, 7, 7, false, 4L)]
    [DataRow(96, 24, 3, 1, 1, 4.0, 28, 28, false, 5L)]
    [DataRow(12, 8, 3, 2, 1, 3.0, 9, 11, true, 6L)]
    [DataRow(20, 30, 1, 1, 0, 3.0, 5, 5, false, 7L)]
    // 1x1 layers over flat planes: 49 floats (a masked piece of 4 vectors), 196 (8 + 4 whole vectors and a masked one;
    // source blocks of 83 planes, 83 + 83 + 26, many of whose runs are empty at density 1/16), 256 (whole pieces only), a
    // term count not a multiple of 8 (D = 5).
    [DataRow(32, 24, 1, 1, 0, 4.0, 7, 7, true, 54L)]
    [DataRow(192, 48, 1, 1, 0, 16.0, 14, 14, false, 55L)]
    [DataRow(16, 16, 1, 1, 0, 4.0, 16, 16, false, 56L)]
    [DataRow(20, 12, 1, 1, 0, 4.0, 9, 11, true, 57L)]
    // ... and in tiles of 128 pixels and a last one of 16 in source blocks of 64 planes: 320 channels of 36 x 36 (five
    // blocks), and the input gradient's 320 output-gradient channels.
    [DataRow(320, 64, 1, 1, 0, 4.0, 36, 36, false, 70L)]
    [DataRow(64, 320, 1, 1, 0, 4.0, 36, 36, true, 71L)]
    // ... and weight gradients whose reused side (the fewer channels: the input, or with fewer outputs the output gradient)
    // passes 512 KB an item, in tiles of 656 and 640 pixels: 128 input channels of 36 x 36, 192 output-gradient
    // channels; and under it, in tiles of 2 items and of 1 (a batch of 3): 128 input channels of 14 x 14, 128
    // output-gradient channels.
    [DataRow(128, 320, 1, 1, 0, 4.0, 36, 36, true, 78L)]
    [DataRow(320, 192, 1, 1, 0, 4.0, 36, 36, false, 79L)]
    [DataRow(128, 160, 1, 1, 0, 4.0, 14, 14, false, 80L)]
    [DataRow(160, 128, 1, 1, 0, 4.0, 14, 14, true, 81L)]
    [DataRow(48, 96, 1, 2, 0, 2.0, 9, 9, false, 8L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 1, 1, false, 9L)]
    [DataRow(16, 16, 5, 1, 2, 4.0, 11, 13, true, 10L)]
    [DataRow(10, 6, 3, 1, 0, 2.0, 40, 41, true, 11L)]
    [DataRow(24, 24, 3, 3, 1, 3.0, 17, 16, false, 12L)]
    // Unit-stride 3x3 planes read unpadded, strip by strip: one whole 16-lane strip, one whole 8-lane strip, first + inner +
    // partial last strips over 2 rows, first + inner + whole last strips over 3 rows, one partial 16-lane strip.
    [DataRow(16, 16, 3, 1, 1, 4.0, 16, 16, false, 13L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 8, 8, true, 14L)]
    [DataRow(16, 8, 3, 1, 1, 4.0, 2, 50, false, 15L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 3, 64, false, 16L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 5, 9, false, 17L)]
    // 8-wide unit-stride planes as row pairs on AVX-512: odd heights (the last pair has one row), a single row.
    [DataRow(16, 8, 3, 1, 1, 4.0, 5, 8, true, 21L)]
    [DataRow(8, 16, 3, 1, 1, 2.0, 1, 8, false, 22L)]
    // 8 x 8 planes summed in registers across their groups: an odd group count (3), a single group.
    [DataRow(12, 10, 3, 1, 1, 4.0, 8, 8, false, 23L)]
    [DataRow(8, 6, 3, 1, 1, 8.0, 8, 8, true, 24L)]
    // Planes narrower than 8 with batch items side by side (a batch of 3: a whole run and a partial one): 7 x 7, 5 wide x
    // 8 high, 7 wide x 5 high, a 3-wide plane (four items to a vector); 8 wide x 7 high as row pairs; a plane too tall
    // for side by side (70 rows) in 8-lane strips.
    [DataRow(16, 16, 3, 1, 1, 4.0, 7, 7, true, 44L)]
    [DataRow(12, 10, 3, 1, 1, 4.0, 8, 5, false, 45L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 7, 8, false, 46L)]
    [DataRow(16, 8, 3, 1, 1, 4.0, 5, 7, true, 47L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 12, 3, false, 48L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 70, 5, true, 53L)]
    // 16-wide planes in blocks of 8 rows on AVX-512: one block (no rows above or below it); top, inner and bottom blocks
    // with an odd group count.
    [DataRow(16, 16, 3, 1, 1, 4.0, 8, 16, false, 25L)]
    [DataRow(12, 10, 3, 1, 1, 4.0, 24, 16, true, 26L)]
    // Planes 9-15 wide in blocks of 8 masked rows, the last block moved up to the last row: 14 x 14 (rows 6-7 twice), an odd
    // height and width, a single block.
    [DataRow(32, 32, 3, 1, 1, 4.0, 14, 14, false, 41L)]
    [DataRow(12, 10, 3, 1, 1, 4.0, 11, 9, true, 42L)]
    [DataRow(16, 16, 3, 1, 1, 4.0, 8, 13, false, 43L)]
    // Stride-2 planes in blocks of 8 output rows on AVX-512: 8-lane rows (one block), 16-lane rows (three blocks, odd group count).
    [DataRow(32, 64, 3, 2, 1, 4.0, 16, 16, false, 27L)]
    [DataRow(12, 10, 3, 2, 1, 4.0, 48, 32, true, 28L)]
    // ... and rows narrower than a vector: 11 x 9 outputs (16 lanes, the last block moved up), 5 x 6 (8 lanes, one block
    // with 3 rows past the plane).
    [DataRow(8, 16, 3, 2, 1, 2.0, 22, 18, false, 51L)]
    [DataRow(8, 8, 3, 2, 1, 2.0, 9, 11, true, 52L)]
    // Stride-2 input gradients written in the input's layout: odd height and width (masked last columns, no last row),
    // 16-lane strips with a partial second half, several strips.
    [DataRow(8, 16, 3, 2, 1, 2.0, 7, 5, false, 18L)]
    [DataRow(8, 16, 3, 2, 1, 2.0, 6, 40, true, 19L)]
    [DataRow(8, 8, 3, 2, 1, 2.0, 3, 70, false, 20L)]
    // Stride-2 input gradients in row blocks of rows narrower than a vector, the last block moved up: 8 lanes (5 of them
    // used, 12 rows), 16 lanes (13 used, 20 rows).
    [DataRow(8, 16, 3, 2, 1, 2.0, 12, 10, false, 49L)]
    [DataRow(12, 10, 3, 2, 1, 4.0, 20, 26, true, 50L)]
    // ... and in row blocks a strip at a time: two strips (16 and 12 columns of output gradient), three.
    [DataRow(8, 16, 3, 2, 1, 2.0, 20, 56, false, 65L)]
    [DataRow(12, 10, 3, 2, 1, 4.0, 10, 88, true, 66L)]
    // Planes of more than 32 groups swept one group at a time, rows ending in a partial vector (on AVX2 summed in rows of
    // whole vectors and copied out): unit stride 14 wide, stride 2 to 14 wide, and a stride-2 input gradient 30 wide.
    [DataRow(160, 16, 3, 1, 1, 4.0, 14, 14, false, 72L)]
    [DataRow(160, 16, 3, 2, 1, 4.0, 28, 28, true, 73L)]
    [DataRow(16, 160, 3, 2, 1, 4.0, 30, 30, false, 74L)]
    public void DirectSparseMatchesTheReference(int cin, int cout, int k, int stride, int padding, double e, int height, int width,
        bool bias, long seed)
    {
        Assert.IsTrue(Layers.Kernels.SparseCorrelation.IsSupported, "this machine has AVX2 + FMA");
        var graph = ExpanderGraph.Create("conv", cin, cout, e, seed);
        AssertExecutionMatchesReference(graph, k, stride, padding, ExpanderExecution.DirectSparse, seed, bias, ScalarType.Float32,
            height, width);
    }

    /// <summary>
    /// Weight gradients summed over tasks of several batch items and added up in task order: 19 items (an odd rest for
    /// the pairs and quads of items side by side), on a stride-2 layer (groups by input), 7- and 3-wide planes side by
    /// side and a 14-wide plane (tasks of 2,048 output pixels).
    /// </summary>
    [TestMethod]
    [DataRow(16, 32, 2, 14, 61L)]
    [DataRow(32, 32, 1, 7, 62L)]
    [DataRow(16, 16, 1, 3, 63L)]
    [DataRow(16, 16, 1, 14, 64L)]
    public void DirectSparseMatchesTheReferenceOverManyBatchItems(int cin, int cout, int stride, int size, long seed)
    {
        var graph = ExpanderGraph.Create("conv", cin, cout, 4.0, seed);
        AssertExecutionMatchesReference(graph, 3, stride, 1, ExpanderExecution.DirectSparse, seed, false, ScalarType.Float32, size, size,
            batch: 19);
    }

    /// <summary>An empty batch: an empty output and input gradient, and a zero weight gradient (it divided by zero).</summary>
    [TestMethod]
    [DataRow(3, 1, 14)]
    [DataRow(3, 2, 14)]
    [DataRow(3, 1, 7)]
    [DataRow(1, 1, 14)]
    [DataRow(1, 2, 14)]
    public void DirectSparseTakesAnEmptyBatch(int kernel, int stride, int size)
    {
        var graph = ExpanderGraph.Create("conv", 16, 16, 4.0, 67L);
        using var layer = new ExpanderConv2d(graph, kernel, stride, kernel / 2, false) { Execution = ExpanderExecution.DirectSparse };
        using var x = randn(0, 16, size, size).requires_grad_(true);
        using var y = layer.forward(x);
        y.sum().backward();
        CollectionAssert.AreEqual(new long[] { 0, 16, (size - 1) / stride + 1, (size - 1) / stride + 1 }, y.shape);
        CollectionAssert.AreEqual(x.shape, x.grad!.shape);
        Assert.AreEqual(0.0, layer.Weight.grad!.abs().sum().item<float>());
    }

    [TestMethod]
    [DataRow(16, 16, 3, 1, 1, 4.0, 32, 32, false, 31L)]
    [DataRow(16, 8, 3, 1, 1, 4.0, 5, 28, true, 32L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 8, 8, false, 33L)]
    [DataRow(8, 8, 3, 1, 1, 2.0, 3, 20, false, 34L)]
    [DataRow(16, 32, 3, 2, 1, 4.0, 32, 32, false, 35L)]
    [DataRow(8, 16, 3, 2, 1, 2.0, 7, 37, true, 36L)]
    [DataRow(48, 96, 1, 2, 0, 2.0, 9, 9, false, 37L)]
    [DataRow(32, 24, 1, 1, 0, 4.0, 7, 7, true, 39L)]
    [DataRow(16, 16, 5, 1, 2, 4.0, 11, 13, true, 38L)]
    // Blocks summed a kernel column at a time: strips two vectors wide at the left edge, inside and at the right edge (45
    // wide: 16, 16 and 13 columns), and planes one vector wide in blocks of 7 (21 high) and 8 rows (16 high).
    [DataRow(16, 16, 3, 1, 1, 4.0, 11, 45, false, 75L)]
    [DataRow(16, 16, 3, 1, 1, 4.0, 21, 7, true, 76L)]
    [DataRow(16, 16, 3, 1, 1, 4.0, 16, 6, false, 77L)]
    public void DirectSparseMatchesTheReferenceOnTheAvx2Paths(int cin, int cout, int k, int stride, int padding, double e, int height,
        int width, bool bias, long seed)
    {
        // What an AVX2-only CPU runs: 8-lane strips for every plane width (first, inner, last and partial strips), no row pairs.
        Layers.Kernels.Simd.Allow512 = false;
        try
        {
            DirectSparseMatchesTheReference(cin, cout, k, stride, padding, e, height, width, bias, seed);
        }
        finally
        {
            Layers.Kernels.Simd.Allow512 = System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
        }
    }

    [TestMethod]
    [DataRow(16, 16, 1, 28, 20)]
    [DataRow(16, 32, 2, 28, 20)]
    [DataRow(32, 64, 2, 14, 17)]
    // Side-by-side items over several weight-gradient chunks: pairs (7 x 7, and 6 x 6 over chunks of 16, 16 and 5 items),
    // fours (3 x 3 and 2 x 2, whole and partial runs); 14 x 14 planes with many channels in chunks of 6 and 3 items (more
    // than fit the cache, for enough pixels a chunk).
    [DataRow(256, 256, 1, 14, 9)]
    [DataRow(64, 64, 1, 7, 20)]
    [DataRow(32, 32, 1, 6, 37)]
    [DataRow(64, 64, 1, 3, 7)]
    [DataRow(16, 16, 1, 2, 9)]
    [DataRow(96, 24, 1, 32, 3)]
    public void DirectSparseMatchesTheReferenceOverBatchesOfSeveralWeightGradientChunks(int cin, int cout, int stride, int size, int batch)
    {
        var graph = ExpanderGraph.Create("layer.conv", cin, cout, 4, seed: batch);
        AssertExecutionMatchesReference(graph, 3, stride, 1, ExpanderExecution.DirectSparse, batch, false, ScalarType.Float32, size, size, batch);
    }

    [TestMethod]
    [DataRow(16, 16, 1, 28)]
    [DataRow(16, 32, 2, 28)]
    [DataRow(32, 64, 2, 14)]
    [DataRow(64, 64, 1, 7)]
    public void DirectSparseFloat32IsWithinOneMillionthOfAFloat64Reference(int cin, int cout, int stride, int size)
    {
        // Float32 rounding alone: measured 1.2e-7 to 3.2e-7 of the largest value (libtorch's grouped conv: 1.2e-7 to 5.9e-7).
        var graph = ExpanderGraph.Create("layer.conv", cin, cout, 4, seed: 0);
        manual_seed(1);
        using var layer = new ExpanderConv2d(graph, 3, stride, 1) { Execution = ExpanderExecution.DirectSparse };
        using var exact = new ExpanderConv2d(graph, 3, stride, 1);
        exact.to(ScalarType.Float64);
        using (no_grad())
        {
            exact.Weight.copy_(layer.Weight);
        }

        using var x = randn(24, cin, size, size).requires_grad_(true);
        using var x64 = x.detach().to(ScalarType.Float64).requires_grad_(true);
        using var y64 = exact.ReferenceForward(x64);
        using var upstream = randn_like(y64);
        (y64 * upstream).sum().backward();
        using var y = layer.forward(x);
        (y * upstream.to(ScalarType.Float32)).sum().backward();

        foreach (var (actual, expected, what) in new[] { (y, y64, "outputs"), (x.grad!, x64.grad!, "input gradients"), (layer.Weight.grad!, exact.Weight.grad!, "weight gradients") })
        {
            using var scope = NewDisposeScope();
            double error = (actual.to(ScalarType.Float64) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
            Assert.IsLessThanOrEqualTo(1e-6, error, $"{what}: {error:E2} of the largest value");
        }
    }

    [TestMethod]
    public void DirectSparseRunsStructuredGraphsAndRefusesAWrongChannelCount()
    {
        var graph = ExpanderGraph.CreateStructured("layer2.0.conv1", 32, 32, 4, 0, 2);
        AssertExecutionMatchesReference(graph, 3, 1, 1, ExpanderExecution.DirectSparse, 0, false, ScalarType.Float32, 8, 8);
        using var layer = new ExpanderConv2d(graph, 3, padding: 1) { Execution = ExpanderExecution.DirectSparse };
        using var wrong = randn(2, 16, 8, 8);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => layer.forward(wrong));
        StringAssert.Contains(ex.Message, "layer2.0.conv1");
        StringAssert.Contains(ex.Message, "(N, 32, H, W)");
    }

    [TestMethod]
    public void AutoRunsSparseLayersDirectOnTheCpuAndDenserOnesGroupedOrThroughTheReference()
    {
        using var sparse = new ExpanderConv2d("a", 32, 32, 3, 4, 0, padding: 1);
        using var sparsePointwise = new ExpanderConv2d("b", 64, 32, 1, 8, 0);
        using var structuredHalf = new ExpanderConv2d(ExpanderGraph.CreateStructured("c", 32, 32, 2, 0), 3, padding: 1);
        using var paperHalf = new ExpanderConv2d("d", 32, 32, 3, 2, 0, padding: 1);

        Assert.AreEqual(ExpanderExecution.Auto, sparse.Execution);
        Assert.AreEqual(ExpanderExecution.DirectSparse, sparse.ResolvedExecution, "density 1/4, float32 on this AVX2 CPU");
        Assert.AreEqual(ExpanderExecution.DirectSparse, sparsePointwise.ResolvedExecution, "density 1/8, 1x1");
        using var pointwiseQuarter = new ExpanderConv2d("e", 64, 32, 1, 4, 0);
        Assert.AreEqual(ExpanderExecution.DirectSparse, pointwiseQuarter.ResolvedExecution, "density 1/4, 1x1 (on large enough planes)");
        Assert.AreEqual(ExpanderExecution.BlockGrouped, structuredHalf.ResolvedExecution, "density 1/2, structured");
        Assert.AreEqual(ExpanderExecution.DirectSparse, paperHalf.ResolvedExecution, "density 1/2, the paper's graph, 3x3 with stride 1");
        using var paperHalfStrided = new ExpanderConv2d("e", 32, 32, 3, 2, 0, stride: 2, padding: 1);
        Assert.AreEqual(ExpanderExecution.Reference, paperHalfStrided.ResolvedExecution, "density 1/2, the paper's graph, stride 2");
        using var paperHalfPointwise = new ExpanderConv2d("f", 32, 32, 1, 2, 0);
        Assert.AreEqual(ExpanderExecution.DirectSparse, paperHalfPointwise.ResolvedExecution, "density 1/2, the paper's graph, 1x1 (on large enough planes)");
        using var paperHalfPointwiseStrided = new ExpanderConv2d("g", 32, 32, 1, 2, 0, stride: 2);
        Assert.AreEqual(ExpanderExecution.Reference, paperHalfPointwiseStrided.ResolvedExecution, "density 1/2, the paper's graph, 1x1 with stride 2");
        paperHalf.Execution = ExpanderExecution.BlockGrouped;
        Assert.AreEqual(ExpanderExecution.BlockGrouped, paperHalf.ResolvedExecution, "the manual override wins");
        sparse.to(ScalarType.Float64);
        Assert.AreEqual(ExpanderExecution.Reference, sparse.ResolvedExecution, "the kernels are float32 only");
    }

    [TestMethod]
    [DataRow(32, 5, 1, false, "a 5 x 5 unit-stride output: below 6 x 6, the reference form")]
    [DataRow(32, 6, 1, true, "a 6 x 6 unit-stride output: the direct kernel")]
    [DataRow(256, 6, 1, true, "a 6 x 6 unit-stride output with D = 64 inputs per output")]
    [DataRow(32, 12, 2, false, "a 6 x 6 output of a stride-2 layer: below 7 x 7")]
    [DataRow(32, 14, 2, true, "a 7 x 7 output of a stride-2 layer")]
    [DataRow(256, 14, 2, false, "a 7 x 7 stride-2 output with D = 64: fewer pixels than D")]
    [DataRow(256, 16, 2, true, "an 8 x 8 stride-2 output with D = 64")]
    public void AutoRunsTheDirectKernelOnlyOnLargeEnoughPlanes(int channels, int size, int stride, bool direct, string why) =>
        AssertAutoGivesTheFormItPicks(() => new ExpanderConv2d("layer4.0.conv1", channels, channels, 3, 4, 0, stride, padding: 1), 4,
            size, direct, why, seed: 3);

    [TestMethod]
    [DataRow(64, 6, false, "a 6 x 6 output at density 1/2: below 7 x 7, the reference form")]
    [DataRow(64, 7, true, "a 7 x 7 output at density 1/2: the direct kernel")]
    [DataRow(24, 7, true, "a 7 x 7 output at density 1/2 with C_in = 24 (D = 12)")]
    public void AutoRunsHalfDensity3x3LayersDirectOnlyOnLargeEnoughPlanes(int channels, int size, bool direct, string why) =>
        AssertAutoGivesTheFormItPicks(() => new ExpanderConv2d("layer4.0.conv2", channels, channels, 3, 2, 0, padding: 1), 4, size,
            direct, why, seed: 5);

    /// <summary>
    /// Auto's output for a size x size input is bit for bit the output of the form it should pick (the direct kernel or the
    /// reference): the two forms round differently, so Auto must give exactly the output of the form it picks.
    /// </summary>
    private static void AssertAutoGivesTheFormItPicks(Func<ExpanderConv2d> create, int batch, int size, bool direct, string why, long seed)
    {
        manual_seed(seed);
        using var auto = create();
        using var forced = create();
        forced.Execution = direct ? ExpanderExecution.DirectSparse : ExpanderExecution.Reference;
        using (no_grad())
        {
            forced.Weight.copy_(auto.Weight);
        }

        using var x = randn(batch, auto.InputChannels, size, size);
        using var expected = forced.call(x);
        using var actual = auto.call(x);
        Assert.AreEqual(ExpanderExecution.DirectSparse, auto.ResolvedExecution, "the layer's resolved form does not depend on the input");
        Assert.IsTrue(expected.eq(actual).all().item<bool>(), why);
    }

    [TestMethod]
    public void GatherMatmulIsRefusedForKernelsLargerThanOne()
    {
        using var layer = new ExpanderConv2d("layer1.0.conv1", 16, 16, 3, 4, 0, padding: 1);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => layer.Execution = ExpanderExecution.GatherMatmul);
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
    }

    [TestMethod]
    [DataRow(4.0, 7, 1, true, "density 1/4, a 7 x 7 output: the direct kernel")]
    [DataRow(4.0, 6, 1, false, "density 1/4, a 6 x 6 output: below 7 x 7, the reference form")]
    [DataRow(4.0, 56, 2, false, "density 1/4, stride 2: the reference form")]
    [DataRow(8.0, 7, 1, true, "density 1/8, a 7 x 7 output: the direct kernel on any plane")]
    [DataRow(8.0, 14, 2, true, "density 1/8, stride 2")]
    [DataRow(2.0, 28, 1, true, "density 1/2, a 28 x 28 output: the direct kernel")]
    [DataRow(2.0, 27, 1, false, "density 1/2, a 27 x 27 output: below 28 x 28, the reference form")]
    public void AutoRunsDenser1x1LayersDirectOnlyOnLargeFlatPlanes(double e, int size, int stride, bool direct, string why) =>
        AssertAutoGivesTheFormItPicks(() => new ExpanderConv2d("layer2.0.conv1", 64, 48, 1, e, 0, stride), 2, size, direct, why, seed: 4);

    [TestMethod]
    public void LoadingAPaperGraphIntoAStructuredLayerSwitchesAutoBackToTheReference()
    {
        // Density 1/2 and stride 2, where Auto does not take the direct kernel, so the graph decides.
        using var paper = new ExpanderConv2d("l", 16, 16, 3, 2, seed: 1, stride: 2, padding: 1);
        using var structured = new ExpanderConv2d(ExpanderGraph.CreateStructured("l", 16, 16, 2, seed: 1), 3, stride: 2, padding: 1);
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
        long seed, bool bias, ScalarType dtype, int height = 9, int width = 9, int batch = 3)
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

        using var x1 = randn(batch, graph.InputChannels, height, width, dtype: dtype).requires_grad_(true);
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
