using XNet.Architectures.Layers;
using XNet.Architectures.Models;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>
/// A residual block with an identity shortcut has its first convolution return the block's input from its autograd node,
/// so that the input's two gradients (the branch's and the shortcut's) are summed in that convolution's backward pass,
/// plane by plane, instead of by autograd in a pass of their own. Training must not notice: the same bits.
/// </summary>
[TestClass]
public sealed class SharedInputGradientTests
{
    [TestMethod]
    [DataRow(16, 28, false, "basic block, unit-stride 3x3 on 28-wide planes")]
    [DataRow(32, 14, false, "basic block on 14-wide planes")]
    [DataRow(64, 7, false, "basic block on 7-wide planes, batch items side by side")]
    [DataRow(64, 14, true, "bottleneck block: a 1x1 first convolution on planes of one pixel tile")]
    [DataRow(64, 28, true, "bottleneck block: a 1x1 first convolution on planes in several pixel tiles")]
    public void ABlockSumsItsInputsGradientsInTheFirstConvolutionWithTheSameBits(int channels, int size, bool bottleneck, string covers)
    {
        var shapes = bottleneck
            ? new[] { (channels, channels / 4, 1, 1), (channels / 4, channels / 4, 3, 1), (channels / 4, channels, 1, 1) }
            : new[] { (channels, channels, 3, 1), (channels, channels, 3, 1) };
        manual_seed(7);
        using var block = new ResidualBlock("layer1.0", shapes, Connectivity.Expander(4), seed: 0);
        block.train();
        var units = block.Branch.Units;

        using var scope = NewDisposeScope();
        var input = randn(3, channels, size, size).requires_grad_(true);
        var upstream = randn(3, channels, size, size);
        var parameters = block.parameters().ToArray();

        var probe = input.detach().requires_grad_(true);
        using (var shared = units[0].ForwardSharingInput(probe).Input)
        {
            Assert.AreNotSame(probe, shared, $"{covers}: the first convolution returns the input from its autograd node");
        }

        var y = block.call(input);
        var gradients = autograd.grad(new[] { y }, parameters.Prepend(input).ToArray(), new[] { upstream });

        // The same block as separate passes: the first unit as it is, the shortcut added by autograd.
        var inputApart = input.detach().clone().requires_grad_(true);
        var x = units[0].call(inputApart);
        for (int i = 1; i < units.Count - 1; i++)
        {
            x = units[i].call(x);
        }

        var yApart = units[^1].Forward(x, inputApart, Activation.ReLU);
        var expected = autograd.grad(new[] { yApart }, parameters.Prepend(inputApart).ToArray(), new[] { upstream });

        Assert.IsTrue(y.eq(yApart).all().item<bool>(), $"{covers}: outputs");
        Assert.IsTrue(gradients[0].eq(expected[0]).all().item<bool>(), $"{covers}: input gradients");
        for (int i = 1; i < gradients.Count; i++)
        {
            Assert.IsTrue(gradients[i].eq(expected[i]).all().item<bool>(), $"{covers}: gradient of parameter {i - 1}");
        }
    }

    [TestMethod]
    public void OnlyADirectKernelWhoseInputGradientAddsSharesItsInput()
    {
        using var scope = NewDisposeScope();
        var input = randn(2, 16, 28, 28).requires_grad_(true);
        using var strided = new Conv2dNormActivation(Connectivity.Expander(4), "layer2.0.conv1", 16, 16, 3, 2, 1, 0, Activation.ReLU);
        using var dense = new Conv2dNormActivation(Connectivity.Dense, "layer1.0.conv1", 16, 16, 3, 1, 1, 0, Activation.ReLU);
        Assert.AreSame(input, strided.ForwardSharingInput(input).Input, "a stride-2 layer's input gradient does not add");
        Assert.AreSame(input, dense.ForwardSharingInput(input).Input, "a dense convolution");
        using (no_grad())
        {
            using var unit = new Conv2dNormActivation(Connectivity.Expander(4), "layer1.0.conv1", 16, 16, 3, 1, 1, 0, Activation.ReLU);
            Assert.AreSame(input, unit.ForwardSharingInput(input).Input, "without gradients");
        }
    }
}
