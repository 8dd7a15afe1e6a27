using TorchSharp;
using TorchSharp.Modules;
using XNet.MLNet.Training;
using static TorchSharp.torch;

namespace XNet.MLNet.Tests;

/// <summary>
/// The trainer's optimisers pass their numbers to libtorch as scalars kept alive through each call; they must still be
/// TorchSharp's SGD and Adam to the bit, state included, so runs and checkpoints are unchanged.
/// </summary>
[TestClass]
public sealed class OptimizerTests
{
    [TestMethod]
    [DataRow(false, 0.0)]
    [DataRow(true, 5e-4)]
    public void KeptScalarSgdStepsExactlyAsTorchSharpsSgd(bool nesterov, double weightDecay)
    {
        AssertSameSteps(
            p => optim.SGD(p, 0.1, 0.9, dampening: 0, weight_decay: weightDecay, nesterov: nesterov),
            p => new KeptScalarOptimizers.SGD(p, 0.1, 0.9, dampening: 0, weightDecay, nesterov));
    }

    [TestMethod]
    [DataRow(0.0)]
    [DataRow(1e-4)]
    public void KeptScalarAdamStepsExactlyAsTorchSharpsAdam(double weightDecay)
    {
        AssertSameSteps(
            p => optim.Adam(p, 0.01, weight_decay: weightDecay),
            p => new KeptScalarOptimizers.Adam(p, 0.01, weightDecay));
    }

    [TestMethod]
    public void NativeFailureKeepsTheCheckAndWhereItWasRaised()
    {
        const string message = "Expected false to be true, but got false.  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.)\n" +
                               "Exception raised from toFloat at /pytorch/c10/core/Scalar.h:140 (most recent call first):\n" +
                               "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x98 (0x7f in libc10.so)\n";
        Assert.AreEqual(
            "Expected false to be true, but got false.  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.) (raised in toFloat)",
            TrainingEngine.NativeFailure(message));
        Assert.AreEqual("DefaultCPUAllocator: not enough memory", TrainingEngine.NativeFailure("DefaultCPUAllocator: not enough memory.\n"));
    }

    /// <summary>Five steps of each optimiser on twin parameters with the same gradients (the second step onwards uses momentum state).</summary>
    private static void AssertSameSteps(Func<IEnumerable<Parameter>, OptimizerHelper> reference, Func<IEnumerable<Parameter>, OptimizerHelper> kept)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        var initial = randn(new long[] { 4, 3 }, generator: generator);
        var expected = new Parameter(initial.clone());
        var actual = new Parameter(initial.clone());
        using var referenceOptimizer = reference(new[] { expected });
        using var keptOptimizer = kept(new[] { actual });
        for (int step = 0; step < 5; step++)
        {
            var gradient = randn(new long[] { 4, 3 }, generator: generator);
            foreach (var (parameter, optimizer) in new[] { (expected, referenceOptimizer), (actual, keptOptimizer) })
            {
                optimizer.zero_grad();
                (parameter * gradient).sum().backward();
                optimizer.step();
            }

            Assert.IsTrue(expected.eq(actual).all().item<bool>(), $"step {step + 1}: {expected.ToString(TorchSharp.TensorStringStyle.Julia)} vs {actual.ToString(TorchSharp.TensorStringStyle.Julia)}");
        }

        // Checkpoints written with TorchSharp's optimiser resume into the trainer's (the saved state names its class).
        using var saved = new MemoryStream();
        using (var writer = new BinaryWriter(saved, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            referenceOptimizer.save_state_dict(writer);
        }

        saved.Position = 0;
        using var resumed = kept(new[] { new Parameter(expected.detach().clone()) });
        using (var reader = new BinaryReader(saved))
        {
            resumed.load_state_dict(reader);
        }
    }
}
