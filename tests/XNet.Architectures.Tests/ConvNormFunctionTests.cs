using TorchSharp.Modules;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>
/// A training unit whose expander convolution runs the direct kernel trains as one autograd function, whose backward pass
/// hands the batch norm's input gradient to the convolution a chunk of batch items at a time. Training must not notice:
/// the outputs, every gradient and the running statistics have the bits of the convolution and the batch norm run apart.
/// </summary>
[TestClass]
public sealed class ConvNormFunctionTests
{
    [TestMethod]
    [DataRow(16, 28, 1, 5, "ReLU", false, false, "28-wide planes in row blocks, a last chunk shorter than the others")]
    [DataRow(32, 14, 1, 3, "ReLU", false, false, "14-wide planes")]
    [DataRow(64, 7, 1, 9, "ReLU", false, false, "7-wide planes, batch items side by side, an odd batch")]
    [DataRow(16, 28, 1, 4, "None", true, false, "a residual added before the ReLU, whose gradient comes back too")]
    [DataRow(64, 7, 1, 3, "None", true, false, "a residual on side-by-side planes")]
    [DataRow(16, 28, 1, 4, "ReLU", false, true, "the input shared, its other gradient added to the input gradient")]
    [DataRow(32, 14, 1, 1, "ReLU6", false, true, "one item, ReLU6, the input shared")]
    [DataRow(16, 28, 2, 5, "ReLU", false, false, "stride 2, 28 -> 14, twice the channels")]
    [DataRow(32, 14, 2, 9, "ReLU", false, false, "stride 2, 14 -> 7")]
    public void TrainsWithTheBitsOfItsPassesApart(int channels, int size, int stride, int batch, string activationName, bool withResidual,
        bool shareInput, string covers)
    {
        var activation = Enum.Parse<Activation>(activationName);
        manual_seed(channels + size + batch);
        int outputChannels = channels * stride, outputSize = (size - 1) / stride + 1;
        using var unit = new Conv2dNormActivation(Connectivity.Expander(4), "layer1.0.conv1", channels, outputChannels, 3, stride, 1, 0,
            withResidual ? Activation.None : activation);
        using var apart = new Conv2dNormActivation(Connectivity.Expander(4), "layer1.0.conv1", channels, outputChannels, 3, stride, 1, 0,
            withResidual ? Activation.None : activation);
        var (conv, norm) = Children(apart);
        using (no_grad())
        {
            var (unitConv, unitNorm) = Children(unit);
            unitNorm.weight!.uniform_(0.5, 3);
            unitNorm.bias!.uniform_(-0.5, 0.5);
            conv.Weight.copy_(unitConv.Weight);
            norm.weight!.copy_(unitNorm.weight);
            norm.bias!.copy_(unitNorm.bias);
        }

        unit.train();
        apart.train();
        for (int step = 0; step < 2; step++)
        {
            using var scope = NewDisposeScope();
            var input = randn(batch, channels, size, size).requires_grad_(true);
            var inputApart = input.detach().clone().requires_grad_(true);
            var residual = withResidual ? randn(batch, outputChannels, outputSize, outputSize).requires_grad_(true) : null;
            var residualApart = residual?.detach().clone().requires_grad_(true);
            var upstream = randn(batch, outputChannels, outputSize, outputSize);
            var sharedUpstream = randn(batch, channels, size, size);

            Tensor output, shared = input;
            if (shareInput)
            {
                (output, shared) = unit.ForwardSharingInput(input);
                Assert.AreNotSame(input, shared, $"{covers}: the unit returns its input from its autograd node");
                scope.Attach(shared);
            }
            else
            {
                output = withResidual ? unit.Forward(input, residual, Activation.ReLU) : unit.call(input);
            }

            var outputApart = TrainingBatchNorm.Call(norm, conv.call(inputApart), withResidual ? Activation.ReLU : activation, residualApart);

            var outputs = shareInput ? new[] { output, shared } : new[] { output };
            var upstreams = shareInput ? new[] { upstream, sharedUpstream } : new[] { upstream };
            var leaves = unit.parameters().Prepend(input).Concat(residual is null ? Array.Empty<Tensor>() : new[] { residual }).ToArray();
            var gradients = autograd.grad(outputs, leaves, upstreams);
            var leavesApart = new Tensor[] { inputApart, conv.Weight, norm.weight!, norm.bias! }
                .Concat(residualApart is null ? Array.Empty<Tensor>() : new[] { residualApart }).ToArray();
            var expected = autograd.grad(new[] { outputApart }, leavesApart, new[] { upstream });
            if (shareInput)
            {
                expected[0] = expected[0] + sharedUpstream; // the shortcut's gradient, as autograd adds it
            }

            Assert.IsTrue(unit.TrainsAsOne(input), $"{covers}: the unit runs as one function");
            Assert.IsTrue(output.eq(outputApart).all().item<bool>(), $"{covers}: outputs");
            string[] names = { "input", "convolution weight", "batch norm weight", "batch norm bias", "residual" };
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.IsTrue(gradients[i].eq(expected[i]).all().item<bool>(),
                    $"{covers}: the {names[i]}'s gradient (largest difference {(gradients[i] - expected[i]).abs().max().item<float>()})");
            }

            Assert.IsTrue(Children(unit).Norm.running_mean!.eq(norm.running_mean!).all().item<bool>(), $"{covers}: running mean");
            Assert.IsTrue(Children(unit).Norm.running_var!.eq(norm.running_var!).all().item<bool>(), $"{covers}: running variance");
        }
    }

    [TestMethod]
    public void AConvolutionWithAForwardHookRunsItsOwnCallSoTheHookFires()
    {
        using var unit = new Conv2dNormActivation(Connectivity.Expander(4), "layer1.0.conv1", 16, 16, 3, 1, 1, 0, Activation.ReLU);
        unit.train();
        using var scope = NewDisposeScope();
        var input = randn(2, 16, 8, 8).requires_grad_(true);
        Assert.IsTrue(unit.TrainsAsOne(input));
        int calls = 0;
        Children(unit).Conv.register_forward_hook((_, _, y) =>
        {
            calls++;
            return y;
        });
        Assert.IsFalse(unit.TrainsAsOne(input), "a hooked convolution runs apart");
        unit.call(input).sum().backward();
        Assert.AreEqual(1, calls);
    }

    private static (ExpanderConv2d Conv, BatchNorm2d Norm) Children(Conv2dNormActivation unit)
    {
        var children = unit.named_children().ToDictionary(child => child.name, child => child.module);
        return ((ExpanderConv2d)children["0"], (BatchNorm2d)children["1"]);
    }
}
