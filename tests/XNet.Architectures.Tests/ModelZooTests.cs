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
    public void EveryRegisteredModelClassifiesAtItsInputWithItsPinnedCost(string name)
    {
        var family = ModelZoo.FamilyOf(name);
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(name, family.Input, family.Classes, seed: 0);
        model.eval();
        using var logits = model.call(randn(2, family.Input.Channels, family.Input.Height, family.Input.Width));

        CollectionAssert.AreEqual(new long[] { 2, family.Classes }, logits.shape);
        Assert.IsTrue(logits.isfinite().all().item<bool>());
        var cost = ModelCost.Measure(model, family.Input);
        Assert.AreEqual(PinnedCosts.ByName[name], (cost.Parameters, cost.MultiplyAccumulates), name);
    }

    /// <summary>
    /// No batch norm of a registered model runs TorchSharp's own <c>BatchNorm2d</c> forward in training: it advances the
    /// batch counter with temporary native scalars, which a garbage collection on another thread can free while libtorch
    /// reads them (troubleshooting.md, toFloat). Every one goes through <c>TrainingBatchNorm</c>, which keeps its scalars.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(RegisteredModels))]
    public void EveryRegisteredModelTrainsItsBatchNormsWithKeptScalars(string name)
    {
        var family = ModelZoo.FamilyOf(name);
        var input = new ImageShape(family.Input.Channels, 32, 32); // the smallest input every family takes
        using var scope = NewDisposeScope();
        using var model = ModelZoo.Create(name, input, family.Classes, seed: 0);
        var plain = new List<string>();
        foreach (var (path, module) in model.named_modules())
        {
            if (module is TorchSharp.Modules.BatchNorm2d norm)
            {
                norm.register_forward_hook((_, _, output) =>
                {
                    plain.Add(path);
                    return output;
                });
            }
        }

        model.train();
        model.call(randn(2, input.Channels, input.Height, input.Width));

        Assert.AreEqual(0, plain.Count, $"{name} trains these batch norms through BatchNorm2d.forward: {string.Join(", ", plain)}");
    }

    [TestMethod]
    public void EveryRegisteredModelHasAPinnedCostAndEveryPinIsRegistered()
    {
        CollectionAssert.AreEquivalent(PinnedCosts.ByName.Keys.ToArray(), ModelZoo.Names.ToArray());
        Assert.AreEqual(ModelZoo.Names.Count, ModelZoo.Names.Distinct().Count(), "variant names are unique");
    }

    [TestMethod]
    [DataRow("resnet-50", "ResNet (ImageNet)")]
    [DataRow("RESNET-56", "ResNet (CIFAR)")]
    [DataRow("x-densenet-bc-100-12-2", "DenseNet-BC (CIFAR)")]
    [DataRow("densenet-40-12", "DenseNet-BC (CIFAR)")]
    [DataRow("g-densenet-121-4", "DenseNet (ImageNet)")]
    [DataRow("x-mobilenet-0.75-4", "MobileNet v1 (ImageNet)")]
    [DataRow("g-vgg16", "VGG16-BN (CIFAR)")]
    public void NamesResolveToTheirFamily(string name, string family) =>
        Assert.AreEqual(family, ModelZoo.FamilyOf(name).Name);

    [TestMethod]
    [DataRow("x-densenet-bc-40-24-2-dt", 18 * 2, 0)]
    [DataRow("x-densenet-bc-40-24-2", 18 * 2 + 2, 0)]
    [DataRow("g-densenet-bc-40-24-2", 0, 18 * 2 + 2)]
    [DataRow("x-resnet-50-2", 16 * 3, 0)]
    [DataRow("x-densenet-121-2", 58 * 2, 0)]
    [DataRow("x-mobilenet-0.5-4", 12, 0)]
    [DataRow("g-mobilenet-0.5-4", 0, 12)]
    [DataRow("x-vgg16", 10, 0)]
    public void ConnectivityReachesTheLayersThePaperNames(string name, int expanderConvs, int groupedConvs)
    {
        var family = ModelZoo.FamilyOf(name);
        using var model = ModelZoo.Create(name, family.Input, family.Classes, 0);

        Assert.AreEqual(expanderConvs, model.modules().OfType<ExpanderConv2d>().Count());
        int grouped = model.modules().OfType<TorchSharp.Modules.Conv2d>()
            .Count(c => c.weight!.shape[1] * c.weight.shape[0] < c.in_channels * c.out_channels && c.weight.shape[1] > 1);
        Assert.AreEqual(groupedConvs, grouped);
    }

    [TestMethod]
    public void XVgg16FollowsTheSeedDensityTable()
    {
        using var model = ModelZoo.Create("x-vgg16", new ImageShape(3, 32, 32), 100, 0);
        var densities = model.modules().OfType<ExpanderConv2d>().Select(c => (double)c.Degree / c.InputChannels).ToArray();
        var linear = model.modules().OfType<ExpanderLinear>().Single();

        CollectionAssert.AreEqual(new[] { 1 / 2.0, 1 / 16.0, 1 / 16.0, 1 / 16.0, 1 / 32.0, 1 / 32.0, 1 / 32.0, 1 / 32.0, 1 / 32.0, 1 / 32.0 }, densities);
        Assert.AreEqual(128, linear.Degree);
        using var logits = model.call(randn(2, 3, 32, 32));
        CollectionAssert.AreEqual(new long[] { 2, 100 }, logits.shape, "any class count (the seed hard-wired 10)");
    }

    [TestMethod]
    public void TooSmallInputsAreRefusedBeforeLibtorchSeesThem()
    {
        var vgg = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("vgg16", new ImageShape(1, 28, 28), 10, 0));
        StringAssert.Contains(vgg.Message, "VGG16 (CIFAR): input 1x28x28 is too small");
        StringAssert.Contains(vgg.Message, "at least 32");
        var densenet = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("densenet-121", new ImageShape(3, 16, 16), 10, 0));
        StringAssert.Contains(densenet.Message, "DenseNet");
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
        var dense = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("densenet-bc-41-12", new ImageShape(3, 32, 32), 10, 0));
        StringAssert.Contains(dense.Message, "6n + 4");
        var classes = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("resnet-20", new ImageShape(1, 28, 28), 1, 0));
        StringAssert.Contains(classes.Message, "from 2 to 100,000");
    }

    [TestMethod]
    public void CompressionAboveStemWidthThrowsNamingTheFirstLayer()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("x-resnet-20-32", new ImageShape(1, 28, 28), 10, 0));
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
    }

    [TestMethod]
    public void WidthMultipliersScaleTheCifarResNetAndKeepTheirDenseTwin()
    {
        Assert.AreEqual("resnet-20-w1.4", ModelZoo.DenseTwinOf("x-resnet-20-8-w1.4"));
        Assert.AreEqual("resnet-20-w0.5", ModelZoo.DenseTwinOf("resnet-20-w0.5"));
        using var half = ModelZoo.Create("resnet-20-w0.5", new ImageShape(3, 32, 32), 10, 0);
        var widths = half.named_parameters().Where(p => p.name.EndsWith("conv2.0.weight", StringComparison.Ordinal)).Select(p => p.parameter.shape[0]).Distinct();
        CollectionAssert.AreEqual(new long[] { 8, 16, 32 }, widths.ToArray());
        Assert.IsFalse(ModelZoo.IsKnown("resnet-20-w0"));
        Assert.ThrowsExactly<ArgumentException>(() => ModelZoo.Create("resnet-20-w17", new ImageShape(3, 32, 32), 10, 0));
    }
}
