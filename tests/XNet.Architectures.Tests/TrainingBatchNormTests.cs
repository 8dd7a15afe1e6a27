using TorchSharp;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>The vectorised training-mode batch norm against libtorch's, through the same module.</summary>
[TestClass]
public sealed class TrainingBatchNormTests
{
    [TestMethod]
    // Planes whose size is a multiple of the vector width, and ones with a scalar tail (7x7, 5x3, 1x1).
    [DataRow(4, 16, 8, 8, 0.1, 0.0, "None")]
    [DataRow(3, 10, 7, 7, 0.1, 0.0, "None")]
    [DataRow(2, 5, 5, 3, 0.3, 0.0, "None")]
    [DataRow(9, 6, 1, 1, 0.1, 0.0, "None")]
    // A mean far from zero relative to the spread (the variance must not cancel), and the cumulative average (no momentum).
    [DataRow(4, 8, 6, 6, 0.1, 1000.0, "None")]
    [DataRow(3, 4, 4, 4, double.NaN, 0.0, "None")]
    // Followed by a ReLU in the same call (its mask recomputed in the backward pass). The offset is 100 here: at 1000
    // the inputs' own float32 spacing (6e-5) moves the normalised values by about 3e-5, above the comparison's 1e-5, and
    // the two implementations round them differently.
    [DataRow(4, 16, 8, 8, 0.1, 0.0, "ReLU")]
    [DataRow(3, 10, 7, 7, 0.1, 0.0, "ReLU")]
    [DataRow(4, 8, 6, 6, 0.1, 100.0, "ReLU")]
    // Followed by a ReLU6 (MobileNet), with gains of 2-5 so that a good share of the outputs pass 6.
    [DataRow(4, 16, 8, 8, 0.1, 0.0, "ReLU6")]
    [DataRow(3, 10, 7, 7, 0.1, 0.0, "ReLU6")]
    public void MatchesLibtorchInOutputsGradientsAndRunningStatistics(int batch, int channels, int height, int width, double momentum,
        double offset, string activationName)
    {
        var activation = Enum.Parse<Activation>(activationName);
        manual_seed(batch * 100 + channels);
        double? momentumOrNull = double.IsNaN(momentum) ? null : momentum;
        using var fast = nn.BatchNorm2d(channels);
        using var reference = nn.BatchNorm2d(channels);
        (fast.momentum, reference.momentum) = (momentumOrNull, momentumOrNull);
        using (no_grad())
        {
            fast.weight!.uniform_(activation == Activation.ReLU6 ? 2 : 0.5, activation == Activation.ReLU6 ? 5 : 1.5);
            fast.bias!.uniform_(-0.5, 0.5);
            reference.weight!.copy_(fast.weight);
            reference.bias!.copy_(fast.bias);
        }

        fast.train();
        reference.train();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            var x = empty(batch, channels, height, width).normal_(offset, 2).requires_grad_(true); // no native scalars (toFloat)
            var xReference = x.detach().clone().requires_grad_(true);
            var upstream = randn(batch, channels, height, width);
            var y = TrainingBatchNorm.Call(fast, x, activation);
            var yReference = activation switch
            {
                Activation.ReLU => nn.functional.relu(reference.call(xReference)),
                Activation.ReLU6 => nn.functional.relu6(reference.call(xReference)),
                _ => reference.call(xReference),
            };
            var gradients = autograd.grad(new[] { y }, new[] { x, fast.weight!, fast.bias! }, new[] { upstream });
            var expected = autograd.grad(new[] { yReference }, new[] { xReference, reference.weight!, reference.bias! }, new[] { upstream });

            AssertClose(yReference, y, $"step {step}: outputs");
            AssertClose(expected[0], gradients[0], $"step {step}: input gradients");
            AssertClose(expected[1], gradients[1], $"step {step}: weight gradients");
            AssertClose(expected[2], gradients[2], $"step {step}: bias gradients");
            AssertClose(reference.running_mean!, fast.running_mean!, $"step {step}: running means");
            AssertClose(reference.running_var!, fast.running_var!, $"step {step}: running variances");
            Assert.AreEqual(reference.num_batches_tracked!.item<long>(), fast.num_batches_tracked!.item<long>());
        }
    }

    [TestMethod]
    [DataRow(4, 16, 8, 8, "ReLU")]
    [DataRow(3, 10, 7, 7, "ReLU")]
    [DataRow(3, 10, 7, 7, "ReLU6")]
    [DataRow(2, 6, 5, 3, "None")]
    public void AResidualAddedInTheSamePassGivesTheSeparateAdditionsBits(int batch, int channels, int height, int width, string activationName)
    {
        // A residual block's last batch norm: act(bn(x) + shortcut) in one pass against bn(x), an addition and the
        // activation run apart (the same batch norm kernel), bit for bit in the output and all four gradients.
        var activation = Enum.Parse<Activation>(activationName);
        manual_seed(batch * 10 + channels);
        using var fused = nn.BatchNorm2d(channels);
        using var apart = nn.BatchNorm2d(channels);
        using (no_grad())
        {
            fused.weight!.uniform_(activation == Activation.ReLU6 ? 2 : 0.5, activation == Activation.ReLU6 ? 5 : 1.5);
            fused.bias!.uniform_(-0.5, 0.5);
            apart.weight!.copy_(fused.weight);
            apart.bias!.copy_(fused.bias);
        }

        using var scope = NewDisposeScope();
        var x = randn(batch, channels, height, width).requires_grad_(true);
        var shortcut = randn(batch, channels, height, width).requires_grad_(true);
        var (xApart, shortcutApart) = (x.detach().clone().requires_grad_(true), shortcut.detach().clone().requires_grad_(true));
        var upstream = randn(batch, channels, height, width);
        var y = TrainingBatchNorm.Call(fused, x, activation, shortcut);
        var sum = TrainingBatchNorm.Call(apart, xApart).add(shortcutApart);
        var yApart = activation switch
        {
            Activation.ReLU => nn.functional.relu(sum),
            Activation.ReLU6 => nn.functional.relu6(sum),
            _ => sum,
        };
        var gradients = autograd.grad(new[] { y }, new[] { x, shortcut, fused.weight!, fused.bias! }, new[] { upstream });
        var expected = autograd.grad(new[] { yApart }, new[] { xApart, shortcutApart, apart.weight!, apart.bias! }, new[] { upstream });

        Assert.IsTrue(y.eq(yApart).all().item<bool>(), "outputs");
        string[] names = ["input", "shortcut", "weight", "bias"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.IsTrue(gradients[i].eq(expected[i]).all().item<bool>(), $"{names[i]} gradients");
        }

        Assert.IsTrue(fused.running_mean!.eq(apart.running_mean!).all().item<bool>(), "running means");
    }

    [TestMethod]
    public void EvaluationModeAndOtherInputsRunThroughTheModule()
    {
        using var norm = nn.BatchNorm2d(3);
        norm.eval();
        using var x = randn(2, 3, 4, 4);
        using var viaModule = norm.call(x);
        using var viaCall = TrainingBatchNorm.Call(norm, x);
        Assert.IsTrue(viaModule.equal(viaCall).all().item<bool>(), "evaluation mode uses the running statistics, as the module does");

        // One value per channel: libtorch's own batch norm decides what that means (PyTorch refuses it in Python only).
        norm.train();
        using var twin = nn.BatchNorm2d(3);
        twin.train();
        using var single = randn(1, 3, 1, 1);
        using var viaTwin = twin.call(single);
        using var viaFastCall = TrainingBatchNorm.Call(norm, single);
        Assert.IsTrue(viaTwin.equal(viaFastCall).all().item<bool>(), "a single value per channel goes through the module");
        Assert.AreEqual(twin.num_batches_tracked!.item<long>(), norm.num_batches_tracked!.item<long>());
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        using var scope = NewDisposeScope();
        double difference = (expected - actual).abs().max().to_type(ScalarType.Float64).item<double>();
        double scale = Math.Max(1, expected.abs().max().to_type(ScalarType.Float64).item<double>());
        Assert.IsLessThanOrEqualTo(1e-5 * scale, difference, $"{what} differ by {difference:G3} at scale {scale:G3}");
    }
}
