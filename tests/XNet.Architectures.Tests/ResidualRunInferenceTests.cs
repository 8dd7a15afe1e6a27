using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>
/// Residual blocks scored a few items at a time (<see cref="ResidualRunInference"/>) must give exactly what their
/// units give one after another over the whole batch: the same kernels over fewer items.
/// </summary>
[TestClass]
public sealed class ResidualRunInferenceTests
{
    private static int blocksMade;

    [TestMethod]
    [DataRow(16, 28, 13, "3x3, 28-wide row blocks, an odd batch")]
    [DataRow(32, 14, 5, "3x3, 14-wide planes")]
    [DataRow(64, 7, 9, "3x3, 7 x 7 planes with items side by side, an odd batch")]
    [DataRow(16, 28, 128, "many runs of items")]
    public void ABasicBlockScoresAsItsUnitsDo(int channels, int size, int batch, string covers) =>
        AssertSameAsUnitByUnit(new[] { Basic(channels) }, batch, channels, size, covers);

    [TestMethod]
    public void ABottleneckBlockScoresAsItsUnitsDo() =>
        AssertSameAsUnitByUnit(new[] { Bottleneck(64) }, 6, 64, 14, "1x1 reduce, 3x3, 1x1 expand on 14 x 14 planes");

    [TestMethod]
    [DataRow(1, 16, 28, 21)]
    [DataRow(2, 64, 7, 6)]
    public void ARunOfBlocksScoresAsItsUnitsDo(int bottlenecks, int channels, int size, int batch)
    {
        // Three blocks: basic ones, or bottlenecks among them, so that buffers of different widths take turns.
        var blocks = Enumerable.Range(0, 3).Select(b => b < bottlenecks ? Bottleneck(channels) : Basic(channels)).ToArray();
        AssertSameAsUnitByUnit(blocks, batch, channels, size, $"{bottlenecks} bottlenecks and {3 - bottlenecks} basic blocks");
    }

    [TestMethod]
    [DataRow(28, 11)]
    [DataRow(14, 4)]
    public void AStageWithAStridedFirstBlockScoresAsItsUnitsDo(int size, int batch)
    {
        // A ResNet stage: a stride-2 first block with a projected shortcut (dense 1x1/2), then two basic blocks.
        var first = new ResidualBranch(Units((16, 32, 3, 2, Activation.ReLU), (32, 32, 3, 1, Activation.None)),
            Randomized(new Conv2dNormActivation(Connectivity.Dense, "layer2.0.downsample.0", 16, 32, 1, 2, 0, 0, Activation.None)
            {
                KeepsLibtorchNorm = true,
            }));
        AssertSameAsUnitByUnit(new[] { first, Basic(32), Basic(32) }, batch, 16, size, "a stride-2 block with a projection, then basic blocks");
    }

    [TestMethod]
    public void OnlyFoldedInferenceThroughTheDirectKernelRunsBlocks()
    {
        var block = Basic(16);
        using var x = randn(4, 16, 28, 28);
        Assert.IsNull(ResidualRunInference.TryRun(new[] { block }, x), "gradients on");
        using (no_grad())
        {
            Assert.IsNull(ResidualRunInference.TryRun(new[] { block }, x), "not asked to fold");
            foreach (var unit in block.Units)
            {
                unit.FoldBatchNormsInInference().eval();
            }

            using (var scored = ResidualRunInference.TryRun(new[] { block }, x))
            {
                Assert.IsNotNull(scored, "folded, evaluation mode, no gradients");
            }

            if (get_num_threads() > 1)
            {
                using var image = x.narrow(0, 0, 1).contiguous();
                Assert.IsNull(ResidualRunInference.TryRun(new[] { block }, image), "one image: each layer's planes split over the threads instead");
            }

            block.Units[0].train();
            Assert.IsNull(ResidualRunInference.TryRun(new[] { block }, x), "a unit in training mode");
            block.Units[0].eval();

            var dense = new Conv2dNormActivation(Connectivity.Dense, "layer1.0.conv2", 16, 16, 3, 1, 1, 0, Activation.None)
                .FoldBatchNormsInInference();
            dense.eval();
            Assert.IsNull(ResidualRunInference.TryRun(new[] { new ResidualBranch(new[] { block.Units[0], dense }) }, x), "a dense unit");
        }
    }

    private static ResidualBranch Basic(int channels) =>
        new(Units((channels, channels, 3, 1, Activation.ReLU), (channels, channels, 3, 1, Activation.None)));

    private static ResidualBranch Bottleneck(int channels) =>
        new(Units((channels, channels / 4, 1, 1, Activation.ReLU), (channels / 4, channels / 4, 3, 1, Activation.ReLU),
            (channels / 4, channels, 1, 1, Activation.None)));

    /// <summary>Expander units with batch norms far from their initial state; each has a graph of its own (seeded by a new path).</summary>
    private static Conv2dNormActivation[] Units(params (int In, int Out, int Kernel, int Stride, Activation Activation)[] shapes)
    {
        int block = Interlocked.Increment(ref blocksMade);
        return shapes.Select((s, i) => Randomized(new Conv2dNormActivation(Connectivity.Expander(4), $"layer1.{block}.conv{i + 1}", s.In, s.Out,
            s.Kernel, s.Stride, s.Kernel / 2, 0, s.Activation))).ToArray();
    }

    private static void AssertSameAsUnitByUnit(ResidualBranch[] blocks, int batch, int channels, int size, string covers)
    {
        foreach (var unit in blocks.SelectMany(block => block.Units.Append(block.Shortcut)).OfType<Conv2dNormActivation>())
        {
            unit.FoldBatchNormsInInference().eval();
        }

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = randn(batch, channels, size, size);
        var expected = x;
        foreach (var block in blocks)
        {
            var y = expected;
            for (int i = 0; i < block.Units.Count - 1; i++)
            {
                y = block.Units[i].call(y);
            }

            expected = block.Units[^1].Forward(y, block.Shortcut?.call(expected) ?? expected, Activation.ReLU);
        }

        var scored = ResidualRunInference.TryRun(blocks, x);
        Assert.IsNotNull(scored, covers);
        Assert.AreEqual(0f, (scored - expected).abs().max().item<float>(), $"{covers}: not the unit-by-unit scores to the bit");
        Assert.IsTrue(expected.abs().max().item<float>() > 0, covers);
    }

    private static Conv2dNormActivation Randomized(Conv2dNormActivation unit)
    {
        FoldedInferenceTests.RandomizeBatchNorms(unit);
        return unit;
    }
}
