using TorchSharp;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

[TestClass]
public sealed class ModelZooTests
{
    public static IEnumerable<object[]> RegisteredModels => ModelZoo.Names.Select(n => new object[] { n });

    [TestMethod]
    [DynamicData(nameof(RegisteredModels))]
    public void EveryRegisteredModelBuildsAndClassifies(string name)
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(name, new ImageShape(1, 28, 28), numClasses: 10, seed: 0);
        model.eval();
        using var logits = model.forward(randn(2, 1, 28, 28));

        CollectionAssert.AreEqual(new long[] { 2, 10 }, logits.shape);
        Assert.IsTrue(logits.isfinite().all().item<bool>());
    }

    [TestMethod]
    public void NamesAreCaseInsensitiveAndVariantsDifferInConnectivity()
    {
        var input = new ImageShape(3, 32, 32);
        using var dense = ModelZoo.Create("ResNet-20", input, 10, 0);
        using var expander = ModelZoo.Create("X-RESNET-20-4", input, 10, 0);
        using var grouped = ModelZoo.Create("g-resnet-20-4", input, 10, 0);

        long denseCount = dense.parameters().Sum(p => p.numel());
        long expanderCount = expander.parameters().Sum(p => p.numel());
        long groupedCount = grouped.parameters().Sum(p => p.numel());

        // ResNet-20 (1x1 projection shortcuts) on CIFAR-10: 272,474 parameters.
        Assert.AreEqual(272_474, denseCount);
        Assert.AreEqual(expanderCount, groupedCount, "compression 4 and 4 groups keep the same number of weights");
        Assert.IsLessThan(denseCount / 2, expanderCount);
        Assert.AreEqual(18, expander.modules().OfType<ExpanderConv2d>().Count(), "every residual-branch 3x3 conv is an expander");
    }

    [TestMethod]
    public void SameSeedRebuildsTheSameGraphs()
    {
        var input = new ImageShape(1, 28, 28);
        using var a = ModelZoo.Create("x-resnet-20-4", input, 10, seed: 5);
        using var b = ModelZoo.Create("x-resnet-20-4", input, 10, seed: 5);
        using var c = ModelZoo.Create("x-resnet-20-4", input, 10, seed: 6);

        var graphs = (nn.Module m) => m.modules().OfType<ExpanderConv2d>()
            .Select(l => string.Join(",", Enumerable.Range(0, l.OutputChannels).SelectMany(o => l.Graph.InputsOf(o).ToArray())))
            .ToArray();
        CollectionAssert.AreEqual(graphs(a), graphs(b));
        CollectionAssert.AreNotEqual(graphs(a), graphs(c));
    }

    [TestMethod]
    public void UnknownNameListsCloseMatches()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("x-resnt-20-4", new ImageShape(1, 28, 28), 10, 0));
        StringAssert.Contains(ex.Message, "'x-resnt-20-4'");
        StringAssert.Contains(ex.Message, "x-resnet-20-4");
    }

    [TestMethod]
    public void InvalidDepthAndClassCountThrow()
    {
        var depth = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("resnet-21", new ImageShape(1, 28, 28), 10, 0));
        StringAssert.Contains(depth.Message, "6n + 2");
        var classes = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("resnet-20", new ImageShape(1, 28, 28), 1, 0));
        StringAssert.Contains(classes.Message, "at least 2");
    }

    [TestMethod]
    public void CompressionAboveStemWidthThrowsNamingTheFirstLayer()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("x-resnet-20-32", new ImageShape(1, 28, 28), 10, 0));
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
    }
}
