using TorchSharp;
using XNet.Architectures.Layers;
using XNet.Architectures.Models;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>
/// The layers' public entry points called outside any dispose scope while another thread collects garbage and runs
/// finalizers without pause. TorchSharp frees a tensor or scalar in its finalizer, so an intermediate that nothing
/// references any more can be freed while libtorch still reads it (the expander layers' dense weight did, and crashed the
/// process within a second under this pressure); every entry point must hold its intermediates until it returns.
/// </summary>
/// <remarks>
/// The test code names every tensor it makes (<c>using var</c>), so that a failure is the library's, not the test's.
/// </remarks>
[TestClass]
public sealed class FinalizerPressureTests
{
    private const int Rounds = 400;

    [TestMethod]
    [DataRow(ExpanderExecution.Reference, 3, 1)]
    [DataRow(ExpanderExecution.BlockGrouped, 3, 1)]
    [DataRow(ExpanderExecution.DirectSparse, 3, 1)]
    [DataRow(ExpanderExecution.DirectSparse, 3, 2)]
    [DataRow(ExpanderExecution.GatherMatmul, 1, 1)]
    public void ExpanderConvTrainsUnderFinalizerPressure(ExpanderExecution execution, int kernel, int stride)
    {
        manual_seed(1);
        using var layer = new ExpanderConv2d("pressure.conv", 64, 64, kernel, 4, seed: 2, stride: stride, padding: kernel / 2)
        {
            Execution = execution,
        };
        using var input = randn(2, 64, 8, 8);
        var expected = TrainingStep(layer, input);

        using var pressure = new FinalizerPressure();
        for (int round = 0; round < Rounds; round++)
        {
            var actual = TrainingStep(layer, input);
            CollectionAssert.AreEqual(expected.Output, actual.Output, $"output of round {round}");
            CollectionAssert.AreEqual(expected.WeightGradient, actual.WeightGradient, $"weight gradient of round {round}");
        }
    }

    [TestMethod]
    [DataRow(ExpanderExecution.Reference)]
    [DataRow(ExpanderExecution.GatherMatmul)]
    public void ExpanderLinearTrainsUnderFinalizerPressure(ExpanderExecution execution)
    {
        manual_seed(3);
        using var layer = new ExpanderLinear("pressure.fc", 256, 128, 4, seed: 4, bias: true) { Execution = execution };
        using var input = randn(4, 256);
        var expected = Step(layer, input);

        using var pressure = new FinalizerPressure();
        for (int round = 0; round < Rounds; round++)
        {
            var actual = Step(layer, input);
            CollectionAssert.AreEqual(expected, actual, $"output of round {round}");
        }

        static float[] Step(ExpanderLinear layer, Tensor input)
        {
            layer.zero_grad();
            using var output = layer.forward(input);
            using var loss = output.sum();
            loss.backward();
            return output.data<float>().ToArray();
        }
    }

    /// <summary>
    /// The project's autograd functions (the direct kernel's convolution, the one that also returns a residual block's
    /// input, the batch norm's) hand their gradients to TorchSharp, which copies them only after the backward call has
    /// returned: a small block, so that many backward calls run while another thread collects garbage.
    /// </summary>
    [TestMethod]
    public void AutogradFunctionsHandOverTheirGradientsUnderFinalizerPressure()
    {
        manual_seed(5);
        using var block = new ResidualBlock("layer1.0", new[] { (16, 16, 3, 1), (16, 16, 3, 1) }, Connectivity.Expander(4), seed: 0);
        block.train();
        using var input = randn(1, 16, 8, 8);
        using (var probe = input.detach().requires_grad_(true))
        using (var shared = block.Branch.Units[0].ForwardSharingInput(probe).Input)
        {
            Assert.AreNotSame(probe, shared, "the block's first convolution returns its input from its own autograd node");
        }

        var expected = Step(block, input);
        using var pressure = new FinalizerPressure();
        for (int round = 0; round < 2 * Rounds; round++)
        {
            var actual = Step(block, input);
            CollectionAssert.AreEqual(expected.InputGradient, actual.InputGradient, $"input gradient of round {round}");
            CollectionAssert.AreEqual(expected.WeightGradient, actual.WeightGradient, $"first weight gradient of round {round}");
        }

        static (float[] InputGradient, float[] WeightGradient) Step(ResidualBlock block, Tensor input)
        {
            block.zero_grad();
            using var leaf = input.detach().requires_grad_(true);
            using var output = block.forward(leaf);
            using var loss = output.sum();
            loss.backward();
            using var inputGradient = leaf.grad!;
            using var weightGradient = block.parameters().First().grad!;
            return (inputGradient.data<float>().ToArray(), weightGradient.data<float>().ToArray());
        }
    }

    /// <summary>
    /// The direct kernel's autograd function on a layer so small that the backward calls come fast: before the gradients
    /// were handed over (<see cref="Layers.Kernels.GradientHandOver"/>), this crashed the process in one of two runs.
    /// </summary>
    [TestMethod]
    public void ATinyDirectKernelLayerTrainsUnderFinalizerPressure()
    {
        using var layer = new ExpanderConv2d("pressure.conv", 16, 16, 3, 4, seed: 1, padding: 1) { Execution = ExpanderExecution.DirectSparse };
        using var input = randn(1, 16, 4, 4).requires_grad_(true);
        var expected = TrainingStep(layer, input).WeightGradient;

        using var pressure = new FinalizerPressure();
        for (int round = 0; round < 50 * Rounds; round++)
        {
            var actual = TrainingStep(layer, input).WeightGradient;
            Assert.IsTrue(expected.AsSpan().SequenceEqual(actual), $"the weight gradient differs in round {round}");
        }
    }

    [TestMethod]
    public void AHandedOverGradientLivesUntilTheThreadsNextBackwardCall()
    {
        var first = new List<Tensor> { ones(2), null! };
        Assert.AreSame(first, Layers.Kernels.GradientHandOver.Return(first));
        Assert.IsFalse(first[0].IsInvalid, "the gradients just returned are kept for libtorch to copy");

        var second = new List<Tensor> { ones(2) };
        Layers.Kernels.GradientHandOver.Return(second);
        Assert.IsTrue(first[0].IsInvalid, "the previous call's gradients are disposed at the next call (libtorch copied them)");
        Assert.IsFalse(second[0].IsInvalid);
    }

    /// <summary>The dense weights (what the reference forms and the ONNX export use), many times: each call is short.</summary>
    [TestMethod]
    public void DenseWeightsAreScatteredUnderFinalizerPressure()
    {
        using var conv = new ExpanderConv2d("pressure.conv", 64, 64, 3, 4, seed: 2, padding: 1);
        using var linear = new ExpanderLinear("pressure.fc", 256, 128, 4, seed: 4);
        var (expectedConv, expectedLinear) = DenseWeights(conv, linear);

        using var pressure = new FinalizerPressure();
        for (int round = 0; round < 5 * Rounds; round++)
        {
            var (actualConv, actualLinear) = DenseWeights(conv, linear);
            Assert.IsTrue(expectedConv.AsSpan().SequenceEqual(actualConv), $"the convolution's dense weight differs in round {round}");
            Assert.IsTrue(expectedLinear.AsSpan().SequenceEqual(actualLinear), $"the linear layer's dense weight differs in round {round}");
        }

        static (float[] Conv, float[] Linear) DenseWeights(ExpanderConv2d conv, ExpanderLinear linear)
        {
            using var noGrad = no_grad();
            using var convWeight = conv.DenseWeight();
            using var linearWeight = linear.DenseWeight();
            return (convWeight.data<float>().ToArray(), linearWeight.data<float>().ToArray());
        }
    }

    [TestMethod]
    public void NormalizeIsBuiltUnderFinalizerPressure()
    {
        using var pressure = new FinalizerPressure();
        for (int round = 0; round < Rounds; round++)
        {
            using var normalize = new Normalize(new[] { 0.5f, 0.25f }, new[] { 2f, 4f });
            CollectionAssert.AreEqual(new[] { 0.5f, 0.25f }, normalize.Mean, $"means of round {round}");
            CollectionAssert.AreEqual(new[] { 2f, 4f }, normalize.Std, $"deviations of round {round}");
        }
    }

    /// <summary>One training step of <paramref name="layer"/> outside any dispose scope: its output and weight gradient.</summary>
    private static (float[] Output, float[] WeightGradient) TrainingStep(ExpanderConv2d layer, Tensor input)
    {
        layer.zero_grad();
        using var output = layer.forward(input);
        using var loss = output.sum();
        loss.backward();
        using var weightGradient = layer.Weight.grad!;
        return (output.data<float>().ToArray(), weightGradient.data<float>().ToArray());
    }

    /// <summary>A thread that collects garbage and waits for the finalizers, over and over, until disposed.</summary>
    private sealed class FinalizerPressure : IDisposable
    {
        private readonly CancellationTokenSource stop = new();
        private readonly Thread thread;

        public FinalizerPressure()
        {
            thread = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
            }) { IsBackground = true, Name = "finalizer pressure" };
            thread.Start();
        }

        public void Dispose()
        {
            stop.Cancel();
            thread.Join();
            stop.Dispose();
        }
    }
}
