using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>A whole model trained through the direct kernel follows the same path as through the reference.</summary>
[TestClass]
public sealed class DirectSparseTrainingTests
{
    [TestMethod]
    public void TrainingStepsThroughTheDirectKernelTrackTheReference()
    {
        // Three steps: training amplifies float32 rounding (the kernel's is about 1e-7 of the largest value, like libtorch's
        // grouped convolution's), and after a few steps of SGD on random labels any two exact forms drift apart.
        var reference = Losses(ExpanderExecution.Reference);
        var direct = Losses(ExpanderExecution.DirectSparse);
        for (int step = 0; step < reference.Length; step++)
        {
            Assert.AreEqual(reference[step], direct[step], 1e-4 * Math.Max(1, reference[step]),
                $"step {step}: reference {reference[step]:G6}, direct {direct[step]:G6}");
        }
    }

    /// <summary>Three SGD steps of x-resnet-20-4 (1x28x28, the README's model, with its two strided layers) on fixed batches.</summary>
    private static double[] Losses(ExpanderExecution execution)
    {
        manual_seed(0);
        using var model = ModelZoo.Create("x-resnet-20-4", new ImageShape(1, 28, 28), 10, seed: 0);
        var layers = model.modules().OfType<ExpanderConv2d>().ToList();
        layers.ForEach(l => l.Execution = execution);
        model.train();
        using var optimizer = optim.SGD(model.parameters(), 0.02, momentum: 0.9);
        var generator = new Generator(seed: 1);
        var losses = new double[3];
        for (int step = 0; step < losses.Length; step++)
        {
            using var scope = NewDisposeScope();
            var images = randn(new long[] { 24, 1, 28, 28 }, generator: generator);
            var labels = randint(10, new long[] { 24 }, generator: generator);
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(images), labels);
            loss.backward();
            optimizer.step();
            losses[step] = loss.item<float>();
        }

        return losses;
    }
}
