using TorchSharp;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

[TestClass]
public sealed class ExpanderLayerTests
{
    [TestMethod]
    [DataRow(16, 32, 3, 1, 1, 4.0)]
    [DataRow(32, 16, 3, 2, 1, 2.0)]
    [DataRow(8, 8, 1, 1, 0, 3.0)]
    public void ConvMatchesDenseConvWithScatteredWeight(int cin, int cout, int k, int stride, int padding, double e)
    {
        manual_seed(11);
        using var layer = new ExpanderConv2d("block.conv", cin, cout, k, e, seed: 5, stride: stride, padding: padding);
        using var denseWeight = layer.DenseWeight().detach().clone().requires_grad_(true);
        using var x1 = randn(3, cin, 9, 9).requires_grad_(true);
        using var x2 = x1.detach().clone().requires_grad_(true);
        using var upstream = randn_like(layer.forward(x1.detach()));

        using var y1 = layer.forward(x1);
        using var y2 = nn.functional.conv2d(x2, denseWeight, null, new long[] { stride, stride }, new long[] { padding, padding });
        (y1 * upstream).sum().backward();
        (y2 * upstream).sum().backward();

        Assert.IsTrue(y1.allclose(y2, rtol: 0, atol: 1e-5), "outputs differ");
        Assert.IsTrue(x1.grad!.allclose(x2.grad!, rtol: 0, atol: 1e-5), "input gradients differ");

        // The compact gradient is the dense gradient gathered at the graph's connections.
        using var index = ((Tensor)layer.get_buffer("indices")!).view(cout, -1, 1, 1).expand(cout, layer.Degree, k, k);
        using var gathered = denseWeight.grad!.gather(1, index);
        // The weight gradient sums over batch and positions (values up to ~50), in another order than the dense conv's on the
        // direct kernel (float32), so it is held to 1e-5 of its scale rather than absolutely.
        double scale = Math.Max(1, gathered.abs().max().item<float>());
        Assert.IsTrue(layer.Weight.grad!.allclose(gathered, rtol: 0, atol: 1e-5 * scale), "weight gradients differ");
    }

    [TestMethod]
    public void ConvWithFullDegreeIsADenseConv()
    {
        manual_seed(3);
        using var layer = new ExpanderConv2d("full", 6, 4, 3, compression: 1, seed: 0, padding: 1);
        Assert.AreEqual(6, layer.Degree);

        using var conv = nn.Conv2d(6, 4, 3, padding: 1, bias: false);
        using (no_grad())
        {
            conv.weight!.copy_(layer.Weight); // with D = C_in the sorted index table is 0..C_in-1: compact == dense layout
        }

        using var x = randn(2, 6, 7, 7);
        Assert.IsTrue(layer.forward(x).allclose(conv.forward(x), rtol: 0, atol: 1e-5));
    }

    [TestMethod]
    [DataRow(16, 32, 3, 4.0)]
    [DataRow(64, 64, 3, 2.0)]
    [DataRow(10, 20, 1, 3.0)]
    public void ParameterCountIsOutputsTimesDegreeTimesKernelArea(int cin, int cout, int k, double e)
    {
        using var layer = new ExpanderConv2d("l", cin, cout, k, e, seed: 1);
        long expected = (long)cout * Math.Max(1, (int)Math.Floor(cin / e)) * k * k;

        Assert.AreEqual(expected, layer.parameters().Sum(p => p.numel()));
    }

    [TestMethod]
    public void StateDictHoldsWeightAndIndices()
    {
        using var layer = new ExpanderConv2d("l", 8, 4, 3, 2, seed: 1);
        var state = layer.state_dict();

        CollectionAssert.AreEquivalent(new[] { "weight", "indices" }, state.Keys.ToArray());
        CollectionAssert.AreEqual(new long[] { 4, 4, 3, 3 }, state["weight"].shape);
        CollectionAssert.AreEqual(new long[] { 4, 4 }, state["indices"].shape);
        Assert.AreEqual(ScalarType.Int64, state["indices"].dtype);
    }

    [TestMethod]
    public void LoadedIndicesReplaceTheDrawnGraph()
    {
        using var source = new ExpanderConv2d("l", 16, 8, 3, 4, seed: 1);
        using var target = new ExpanderConv2d("l", 16, 8, 3, 4, seed: 2);
        Assert.IsFalse(source.Graph.InputsOf(0).SequenceEqual(target.Graph.InputsOf(0)) &&
                       source.Graph.InputsOf(1).SequenceEqual(target.Graph.InputsOf(1)));

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            source.save(writer);
        }

        stream.Position = 0;
        using (var reader = new BinaryReader(stream))
        {
            target.load(reader);
        }

        for (int o = 0; o < 8; o++)
        {
            CollectionAssert.AreEqual(source.Graph.InputsOf(o).ToArray(), target.Graph.InputsOf(o).ToArray());
        }

        using var x = randn(1, 16, 5, 5);
        Assert.IsTrue(source.forward(x).allclose(target.forward(x)));
    }

    [TestMethod]
    public void LinearMatchesDenseLinearWithScatteredWeight()
    {
        manual_seed(4);
        using var layer = new ExpanderLinear("fc", 20, 6, compression: 4, seed: 2);
        using var dense = layer.DenseWeight().detach().clone().requires_grad_(true);
        using var x1 = randn(5, 20).requires_grad_(true);
        using var x2 = x1.detach().clone().requires_grad_(true);

        using var y1 = layer.forward(x1);
        using var y2 = nn.functional.linear(x2, dense);
        y1.square().sum().backward();
        y2.square().sum().backward();

        Assert.AreEqual(6L * 5, layer.parameters().Sum(p => p.numel()));
        Assert.IsTrue(y1.allclose(y2, rtol: 0, atol: 1e-5));
        Assert.IsTrue(x1.grad!.allclose(x2.grad!, rtol: 0, atol: 1e-5));
        using var gathered = dense.grad!.gather(1, (Tensor)layer.get_buffer("indices")!);
        Assert.IsTrue(layer.Weight.grad!.allclose(gathered, rtol: 0, atol: 1e-5));
    }

    [TestMethod]
    public void GroupedConnectivityRejectsIndivisibleChannelsNamingTheLayer()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(
            () => Connectivity.Grouped(3).Conv2d("layer1.0.conv1", 16, 16, 3, 1, 1, 0));
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
        StringAssert.Contains(ex.Message, "g=3");
    }

    [TestMethod]
    public void ExpanderCompressionAboveInputsThrowsNamingTheLayer()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(
            () => Connectivity.Expander(32).Conv2d("layer1.0.conv1", 16, 16, 3, 1, 1, 0));
        StringAssert.Contains(ex.Message, "layer1.0.conv1");
        StringAssert.Contains(ex.Message, "e=32");
    }
}
