using TorchSharp;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>The structured expander family and the block-diagonal baseline as graphs.</summary>
[TestClass]
public sealed class StructuredGraphTests
{
    [TestMethod]
    [DataRow(16, 16, 4.0, 2, 8)]
    [DataRow(32, 96, 4.0, 3, 12)]
    [DataRow(96, 24, 2.0, 4, 8)]
    [DataRow(336, 96, 2.0, 2, 4)]
    [DataRow(64, 128, 16.0, 2, 32)]
    public void EveryOutputHasExactlyDDistinctInputsAndEveryInputTheSameDegree(int cin, int cout, double e, int copies, int blocks)
    {
        var graph = ExpanderGraph.CreateStructured("layer", cin, cout, e, seed: 3, copies);
        int degree = ExpanderGraph.DegreeFor("layer", cin, e);

        Assert.AreEqual(degree, graph.Degree);
        Assert.AreEqual(blocks, graph.BlockCount);
        for (int o = 0; o < cout; o++)
        {
            var row = graph.InputsOf(o).ToArray();
            Assert.HasCount(degree, row.Distinct().ToArray(), $"output {o} has {row.Distinct().Count()} distinct inputs");
            Assert.IsTrue(row.All(i => i >= 0 && i < cin));
        }

        var inputs = graph.InputDegrees();
        Assert.AreEqual(cout * degree / cin, inputs.Min, "every input is read by C_out D / C_in outputs");
        Assert.AreEqual(cout * degree / cin, inputs.Max);
        Assert.AreEqual(0, inputs.Isolated);
    }

    [TestMethod]
    [DataRow(16, 16, 4.0)]
    [DataRow(32, 64, 4.0)]
    [DataRow(64, 64, 2.0)]
    [DataRow(96, 24, 2.0)]
    [DataRow(512, 512, 16.0)]
    public void TwoOrMoreCopiesAreConnectedAndOneCopyIsNot(int cin, int cout, double e)
    {
        for (int copies = 2; copies <= 4; copies++)
        {
            var graph = ExpanderGraph.CreateStructured("layer", cin, cout, e, seed: 0, copies);
            if (ExpanderGraph.StructuredCopiesFor(cin, cout, graph.Degree, copies) != copies)
            {
                continue;
            }

            Assert.IsTrue(graph.IsConnected(), $"r={copies}");
            Assert.IsGreaterThan(0.01, graph.SpectralGap(), $"r={copies}");
        }

        var single = ExpanderGraph.CreateStructured("layer", cin, cout, e, seed: 0, copies: 1);
        Assert.IsFalse(single.IsConnected());
        Assert.AreEqual(0, single.SpectralGap(), 1e-9);
    }

    [TestMethod]
    [DataRow(16, 32, 4)]
    [DataRow(64, 64, 2)]
    public void BlockDiagonalGraphsHaveGapZero(int cin, int cout, int groups)
    {
        var graph = ExpanderGraph.CreateBlockDiagonal("g", cin, cout, groups);

        Assert.AreEqual(groups, graph.BlockCount);
        Assert.AreEqual(cin / groups, graph.Degree);
        Assert.IsFalse(graph.IsConnected());
        Assert.AreEqual(0, graph.SpectralGap(), 1e-9);
        CollectionAssert.AreEqual(Enumerable.Range(0, cin / groups).ToArray(), graph.InputsOf(0).ToArray());
    }

    [TestMethod]
    public void SameSeedAndPathGiveTheSameStructuredGraph()
    {
        string Rows(ExpanderGraph g) => string.Join("|", Enumerable.Range(0, g.OutputChannels).Select(o => string.Join(",", g.InputsOf(o).ToArray())));
        var a = ExpanderGraph.CreateStructured("layer2.0.conv1", 32, 64, 4, seed: 42, copies: 2);
        var b = ExpanderGraph.CreateStructured("layer2.0.conv1", 32, 64, 4, seed: 42, copies: 2);

        Assert.AreEqual(Rows(a), Rows(b));
        Assert.AreNotEqual(Rows(a), Rows(ExpanderGraph.CreateStructured("layer2.0.conv2", 32, 64, 4, seed: 42, copies: 2)));
        Assert.AreNotEqual(Rows(a), Rows(ExpanderGraph.CreateStructured("layer2.0.conv1", 32, 64, 4, seed: 43, copies: 2)));
    }

    [TestMethod]
    public void CopiesAreLoweredOrTheShapeFallsBackToThePaperGraph()
    {
        // q = C_in / D = 4 blocks per copy; C_out = 24 takes G = 8 (r = 2) and G = 12 (r = 3) but not G = 16 (r = 4).
        Assert.AreEqual(3, ExpanderGraph.StructuredCopiesFor(16, 24, 4, 4));
        Assert.AreEqual(12, ExpanderGraph.CreateStructured("l", 16, 24, 4, 0, copies: 4).BlockCount);

        // D = 3 does not divide C_in = 10: no structured graph, the paper's (same degree) instead.
        Assert.AreEqual(0, ExpanderGraph.StructuredCopiesFor(10, 20, 3, 2));
        var fallback = ExpanderGraph.CreateStructured("l", 10, 20, 3, 0);
        var paper = ExpanderGraph.Create("l", 10, 20, 3, 0);
        for (int o = 0; o < 20; o++)
        {
            CollectionAssert.AreEqual(paper.InputsOf(o).ToArray(), fallback.InputsOf(o).ToArray());
        }

        // r = 2 never drops to a disconnected r = 1: G = 8 > C_out = 4 leaves the paper graph.
        Assert.AreEqual(0, ExpanderGraph.StructuredCopiesFor(16, 4, 4, 2));
    }

    [TestMethod]
    public void RamanujanGapFollowsTheBiregularBound()
    {
        // (c, d) = (4, 4): 1 - (sqrt 3 + sqrt 3) / 4.
        Assert.AreEqual(1 - Math.Sqrt(3) / 2, ExpanderGraph.RamanujanGap(4, 4), 1e-12);
        Assert.AreEqual(0, ExpanderGraph.RamanujanGap(2, 2), 1e-12, "a 4-cycle union: sigma2 = sigma1");
        Assert.AreEqual(1 - (Math.Sqrt(15) + Math.Sqrt(31)) / Math.Sqrt(16 * 32), ExpanderGraph.RamanujanGap(16, 32), 1e-12);
    }

    [TestMethod]
    [DataRow("s-resnet-20-4", 3, 32)]
    [DataRow("s-resnet-18-2", 3, 32)]
    [DataRow("s-densenet-bc-40-24-2", 3, 32)]
    [DataRow("s-mobilenet-0.5-4", 3, 32)]
    public void EveryStructuredZooLayerIsConnectedAndRunsDirectOrGrouped(string name, int channels, int size)
    {
        using var model = ModelZoo.Create(name, new ImageShape(channels, size, size), 10, seed: 0);
        var layers = model.modules().OfType<ExpanderConv2d>().ToList();
        Assert.IsNotEmpty(layers);
        foreach (var layer in layers)
        {
            var graph = layer.Graph;
            Assert.AreEqual(graph.Degree, graph.OutputDegrees().Min, layer.LayerPath);
            Assert.IsLessThan(graph.OutputChannels, graph.BlockCount, $"{name} {layer.LayerPath} fell back to the paper graph");
            // On this CPU the direct kernel takes float32 layers of density 1/4 and below (running the reference form on
            // planes too small for it); denser layers, and layers it cannot run (here: float64), take the structured
            // graph's grouped form.
            bool direct = 4 * layer.Degree <= layer.InputChannels;
            var expected = direct ? ExpanderExecution.DirectSparse : ExpanderExecution.BlockGrouped;
            Assert.AreEqual(expected, layer.ResolvedExecution, layer.LayerPath);
            layer.to(ScalarType.Float64);
            Assert.AreEqual(ExpanderExecution.BlockGrouped, layer.ResolvedExecution, layer.LayerPath);
            Assert.IsTrue(graph.IsConnected(), $"{name} {layer.LayerPath}");
            Assert.IsGreaterThan(0, graph.SpectralGap(), $"{name} {layer.LayerPath}");
        }
    }

    [TestMethod]
    public void StructuredNamesCarryTheirCopiesAndShareTheDenseTwin()
    {
        Assert.AreEqual("resnet-20", ModelZoo.DenseTwinOf("s-resnet-20-4"));
        Assert.AreEqual("resnet-20", ModelZoo.DenseTwinOf("s-resnet-20-4-r3"));
        Assert.AreEqual("densenet-bc-40-24", ModelZoo.DenseTwinOf("s-densenet-bc-40-24-2-dt-r4"));
        Assert.IsFalse(ModelZoo.IsKnown("x-resnet-20-4-r3"), "only s- names take -rN");
        Assert.IsFalse(ModelZoo.IsKnown("s-resnet-20-4-r0"));
        Assert.IsFalse(ModelZoo.IsKnown("s-resnet-20"));

        var input = new ImageShape(3, 32, 32);
        using var r2 = ModelZoo.Create("s-resnet-20-4", input, 10, seed: 0);
        using var r3 = ModelZoo.Create("S-ResNet-20-4-R3", input, 10, seed: 0);
        using var paper = ModelZoo.Create("x-resnet-20-4", input, 10, seed: 0);
        var first = (nn.Module m) => m.modules().OfType<ExpanderConv2d>().First().Graph.BlockCount;
        Assert.AreEqual(8, first(r2), "16 -> 16 at e = 4: G = r C_in / D = 2 x 4");
        Assert.AreEqual(8, first(r3), "r = 3 needs G = 12, which does not divide 16: the layer drops to r = 2");
        Assert.AreEqual(16, first(paper));
        Assert.AreEqual(paper.parameters().Sum(p => p.numel()), r2.parameters().Sum(p => p.numel()));
    }
}
