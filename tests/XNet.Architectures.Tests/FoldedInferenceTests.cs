using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>
/// Inference (evaluation mode, no gradients) of a model set to fold (<see cref="InferenceFolding"/>) folds each conv
/// unit's batch norm into its convolution; with gradients on, the same model runs convolution, batch norm and activation
/// one after another. Both must score alike.
/// </summary>
[TestClass]
public sealed class FoldedInferenceTests
{
    [TestMethod]
    [DataRow("x-resnet-20-4", "1x28x28", "direct kernel, unit and stride-2 layers, 28-, 14- and 7-wide planes, shortcuts added in the epilogue")]
    [DataRow("resnet-20", "3x32x32", "dense convolutions")]
    [DataRow("g-resnet-20-4", "3x32x32", "grouped dense convolutions")]
    [DataRow("s-resnet-20-4", "3x32x32", "structured expander graphs")]
    [DataRow("x-vgg16", "3x32x32", "VGG's conv units")]
    [DataRow("x-mobilenet-0.5-4", "3x64x64", "ReLU6, depthwise convolutions, 1x1 expander layers flat on 32- to 8-wide planes and on the reference form on 4 x 4 and 2 x 2")]
    [DataRow("x-resnet-18-4", "3x64x64", "planes under 6 x 6 on the reference form, unfolded; 8 x 8 planes direct, shortcuts added in the epilogue")]
    public void ModelsScoreAlikeWithTheirBatchNormsFolded(string name, string input, string covers)
    {
        var shape = input.Split('x').Select(int.Parse).ToArray();
        manual_seed(11);
        using var model = ModelZoo.Create(name, new ImageShape(shape[0], shape[1], shape[2]), 10, seed: 0).FoldBatchNormsInInference();
        RandomizeBatchNorms(model);
        model.eval();
        using var x = randn(3, shape[0], shape[1], shape[2]);

        using var unfolded = model.call(x);
        Tensor folded;
        using (no_grad())
        {
            folded = model.call(x);
        }

        using (folded)
        {
            double tolerance = 1e-4 * Math.Max(1, unfolded.abs().max().item<float>());
            double difference = (folded - unfolded).abs().max().item<float>();
            Assert.IsTrue(difference <= tolerance, $"{name} ({covers}): max |difference| {difference:g3} above {tolerance:g3}");
        }
    }

    [TestMethod]
    [DataRow(true, "ReLU")]
    [DataRow(true, "ReLU6")]
    [DataRow(true, "None")]
    [DataRow(false, "ReLU")]
    public void AUnitSkipsItsConvolutionsOwnPassOnlyWhenFolding(bool expander, string activationName)
    {
        var activation = Enum.Parse<Activation>(activationName);
        manual_seed(5);
        var connectivity = expander ? Connectivity.Expander(4) : Connectivity.Dense;
        using var unit = new Conv2dNormActivation(connectivity, "layer1.0.conv1", 32, 32, 3, 1, 1, 0, activation).FoldBatchNormsInInference();
        RandomizeBatchNorms(unit);
        var conv = unit.named_children().Single(c => c.name == "0").module as nn.Module<Tensor, Tensor>;
        int calls = 0;
        conv!.register_forward_hook((_, _, output) => { calls++; return output; });
        using var x = empty(2, 32, 8, 8).normal_(0, 3);

        using var trained = unit.call(x);
        unit.eval();
        using var evaluated = unit.call(x);
        Assert.AreEqual(2, calls, "training, and evaluation with gradients, run the convolution");
        Tensor folded;
        using (no_grad())
        {
            folded = unit.call(x);
        }

        using (folded)
        {
            Assert.AreEqual(2, calls, "folded inference does not");
            Assert.IsTrue((folded - evaluated).abs().max().item<float>() <= 1e-4 * Math.Max(1, evaluated.abs().max().item<float>()));
            if (activation == Activation.ReLU6)
            {
                Assert.IsTrue(folded.max().item<float>() <= 6 && folded.min().item<float>() >= 0);
            }
        }
    }

    [TestMethod]
    [DataRow("layer1.0.conv1.1.running_var", "a batch norm's statistics")]
    [DataRow("layer2.0.conv2.1.weight", "a batch norm's gamma")]
    [DataRow("layer1.1.conv1.0.weight", "an expander convolution's compact weight")]
    [DataRow("conv1.0.weight", "the dense stem's weight")]
    [DataRow("layer3.0.downsample.0.weight", "a shortcut projection's weight")]
    public void AFoldingKeptBetweenBatchesFollowsAnInPlaceChange(string tensorName, string what)
    {
        // A unit keeps its folding between batches (FoldedWeights); an in-place change of anything it was made from, as
        // an optimiser step or a loaded state makes, must reach the next batch's scores.
        manual_seed(3);
        using var model = ModelZoo.Create("x-resnet-20-4", new ImageShape(1, 28, 28), 10, seed: 0).FoldBatchNormsInInference();
        RandomizeBatchNorms(model);
        model.eval();
        using var x = randn(4, 1, 28, 28);
        Tensor Folded()
        {
            using var noGrad = no_grad();
            return model.call(x);
        }

        using var first = Folded();
        using var again = Folded();
        Assert.AreEqual(0f, (first - again).abs().max().item<float>(), "the kept folding scores as the first, to the bit");

        var named = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(model.named_buffers()).ToDictionary(p => p.Item1, p => p.Item2);
        Assert.IsTrue(named.ContainsKey(tensorName), $"{tensorName} is not among {string.Join(", ", named.Keys)}");
        using (no_grad())
        {
            named[tensorName].mul_(1.5); // 1.5: positive, so a variance stays a variance
        }

        using var changed = Folded();
        using var unfolded = model.call(x);
        double tolerance = 1e-4 * Math.Max(1, unfolded.abs().max().item<float>());
        double difference = (changed - unfolded).abs().max().item<float>();
        Assert.IsTrue(difference <= tolerance, $"after changing {what}: max |difference| {difference:g3} above {tolerance:g3}");
        Assert.IsTrue((changed - first).abs().max().item<float>() > 10 * tolerance, $"changing {what} changes the scores");
    }

    [TestMethod]
    public void NothingFoldsUnlessAsked()
    {
        // A hook on a convolution sees every inference pass of a model nobody asked to fold, as in PyTorch.
        using var model = ModelZoo.Create("x-resnet-20-4", new ImageShape(1, 28, 28), 10, seed: 0);
        var conv = model.modules().OfType<ExpanderConv2d>().First();
        int calls = 0;
        conv.register_forward_hook((_, _, output) => { calls++; return output; });
        model.eval();
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            model.call(randn(2, 1, 28, 28));
        }

        Assert.AreEqual(1, calls);
        model.FoldBatchNormsInInference();
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            model.call(randn(2, 1, 28, 28));
        }

        Assert.AreEqual(1, calls, "folded");
        model.FoldBatchNormsInInference(fold: false);
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            model.call(randn(2, 1, 28, 28));
        }

        Assert.AreEqual(2, calls, "unfolded again");
    }

    /// <summary>Batch norms with statistics and affine parameters far from their initial 0 and 1, so that folding matters.</summary>
    internal static void RandomizeBatchNorms(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var norm in model.modules().OfType<BatchNorm2d>())
        {
            // Drawn in place with plain double arguments: tensor-and-number operators (randn(c) * 0.5) pass native scalars
            // that a garbage collection on another thread can free during the call (troubleshooting.md, toFloat).
            norm.running_mean!.normal_(0, 0.5);
            norm.running_var!.uniform_(0.5, 2.0);
            norm.weight!.uniform_(0.5, 1.5);
            norm.bias!.normal_(0, 0.2);
        }
    }
}
