using XNet.Architectures.Graphs;

namespace XNet.Architectures.Tests;

[TestClass]
public sealed class ExpanderGraphTests
{
    [TestMethod]
    [DataRow(64, 32, 4.0, 16)]
    [DataRow(16, 16, 4.0, 4)]
    [DataRow(10, 7, 3.0, 3)]
    [DataRow(3, 5, 3.0, 1)]
    [DataRow(16, 8, 1.0, 16)]
    public void EveryOutputHasDegreeDistinctInputs(int inputs, int outputs, double compression, int expectedDegree)
    {
        var graph = ExpanderGraph.Create("layer", inputs, outputs, compression, seed: 7);

        Assert.AreEqual(expectedDegree, graph.Degree);
        Assert.AreEqual((long)outputs * expectedDegree, graph.EdgeCount);
        for (int o = 0; o < outputs; o++)
        {
            var row = graph.InputsOf(o).ToArray();
            Assert.HasCount(expectedDegree, row);
            Assert.HasCount(expectedDegree, row.Distinct().ToArray(), $"output {o} repeats an input");
            Assert.IsTrue(row.All(i => i >= 0 && i < inputs), $"output {o} has an input out of range");
        }

        var stats = graph.OutputDegrees();
        Assert.AreEqual(expectedDegree, stats.Min);
        Assert.AreEqual(expectedDegree, stats.Max);
        Assert.AreEqual(expectedDegree * (double)outputs / inputs, graph.InputDegrees().Mean, 1e-12);
    }

    [TestMethod]
    public void SameSeedAndPathGiveTheSameGraph()
    {
        var a = ExpanderGraph.Create("layer2.0.conv1", 32, 64, 4, seed: 42);
        var b = ExpanderGraph.Create("layer2.0.conv1", 32, 64, 4, seed: 42);
        var otherPath = ExpanderGraph.Create("layer2.0.conv2", 32, 64, 4, seed: 42);
        var otherSeed = ExpanderGraph.Create("layer2.0.conv1", 32, 64, 4, seed: 43);

        Assert.IsTrue(SameEdges(a, b));
        Assert.IsFalse(SameEdges(a, otherPath));
        Assert.IsFalse(SameEdges(a, otherSeed));
    }

    [TestMethod]
    public void GraphIsStableAcrossReleases()
    {
        // Pinned output of the generator: changing SplitMix64, the hash or the sampling breaks saved models' rebuilds.
        var graph = ExpanderGraph.Create("layer1.0.conv1", 16, 4, 4, seed: 0);
        var rows = Enumerable.Range(0, 4).Select(o => string.Join(",", graph.InputsOf(o).ToArray())).ToArray();
        Assert.AreEqual(PinnedRows, string.Join(" | ", rows));
    }

    [TestMethod]
    public void InputDegreesAreUniformOnAverage()
    {
        var graph = ExpanderGraph.Create("wide", 64, 4096, 4, seed: 1);
        var stats = graph.InputDegrees();

        Assert.AreEqual(1024, stats.Mean, 1e-9);
        Assert.IsGreaterThan(900, stats.Min);
        Assert.IsLessThan(1150, stats.Max);
        Assert.AreEqual(0, stats.Isolated);
    }

    [TestMethod]
    public void ExpanderHasALargerSpectralGapThanBlockDiagonalGroups()
    {
        var expander = ExpanderGraph.Create("layer", 64, 64, 4, seed: 3);
        var blocks = Enumerable.Range(0, 64).SelectMany(o => Enumerable.Range(o / 16 * 16, 16).Select(i => (long)i)).ToArray();
        var grouped = ExpanderGraph.FromIndices("grouped", 64, 64, blocks);

        double gap = expander.SpectralGap();
        Assert.IsGreaterThan(0.3, gap);
        Assert.IsLessThan(1.0, gap);
        Assert.AreEqual(0.0, grouped.SpectralGap(), 1e-9, "four disconnected blocks have sigma2 = sigma1");
    }

    [TestMethod]
    public void DenseGraphHasGapOne()
    {
        var dense = ExpanderGraph.Create("dense", 8, 8, 1, seed: 0);
        Assert.AreEqual(1.0, dense.Density);
        Assert.AreEqual(1.0, dense.SpectralGap(), 1e-9);
    }

    [TestMethod]
    [DataRow(0.5)]
    [DataRow(17.0)]
    [DataRow(double.NaN)]
    public void CompressionOutsideOneToInputsThrowsNamingTheLayer(double compression)
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ExpanderGraph.Create("layer3.1.conv2", 16, 16, compression, 0));
        StringAssert.Contains(ex.Message, "layer3.1.conv2");
        StringAssert.Contains(ex.Message, "C_in=16");
    }

    [TestMethod]
    public void NonPositiveSizesThrow()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ExpanderGraph.Create("fc", 0, 10, 1, 0));
        StringAssert.Contains(ex.Message, "'fc'");
        StringAssert.Contains(ex.Message, "C_in=0");
    }

    [TestMethod]
    public void FromIndicesRejectsRepeatsAndOutOfRange()
    {
        var repeat = Assert.ThrowsExactly<ArgumentException>(() => ExpanderGraph.FromIndices("l", 4, 2, new long[] { 0, 1, 2, 2 }));
        StringAssert.Contains(repeat.Message, "output channel 1");
        var range = Assert.ThrowsExactly<ArgumentException>(() => ExpanderGraph.FromIndices("l", 4, 2, new long[] { 0, 4, 1, 2 }));
        StringAssert.Contains(range.Message, "[0, 4)");
        Assert.ThrowsExactly<ArgumentException>(() => ExpanderGraph.FromIndices("l", 4, 3, new long[] { 0, 1, 2, 3 }));
    }

    [TestMethod]
    public void MaskMatchesIndexTable()
    {
        var graph = ExpanderGraph.Create("layer", 12, 5, 3, seed: 9);
        using var mask = graph.ToMask();
        var values = mask.data<float>().ToArray();

        Assert.AreEqual(graph.EdgeCount, (long)values.Sum());
        for (int o = 0; o < 5; o++)
        {
            foreach (int i in graph.InputsOf(o))
            {
                Assert.AreEqual(1f, values[o * 12 + i]);
            }
        }
    }

    private const string PinnedRows = "2,5,9,15 | 5,10,11,12 | 6,8,9,13 | 1,4,9,10";

    private static bool SameEdges(ExpanderGraph a, ExpanderGraph b) =>
        Enumerable.Range(0, a.OutputChannels).All(o => a.InputsOf(o).SequenceEqual(b.InputsOf(o)));
}
