using XNet.Architectures.Graphs;
using XNet.Architectures.Layers;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

/// <summary>How the direct kernel's work is run: every task once, failures surfaced, results independent of scheduling.</summary>
[TestClass]
public sealed class KernelThreadsTests
{
    [TestMethod]
    [DataRow(1L, 2)]
    [DataRow(1000L, 2)]
    [DataRow(37L, 4)]
    [DataRow(5L, 1)]
    public void EveryTaskRunsExactlyOnce(long count, int threads)
    {
        using (zeros(1)) // libtorch (and its OpenMP runtime) loaded, as it is when a layer runs
        {
        }

        var runs = new int[count];
        KernelThreads.ForEach(count, threads, task => Interlocked.Increment(ref runs[task]));
        CollectionAssert.AreEqual(Enumerable.Repeat(1, (int)count).ToArray(), runs);
    }

    [TestMethod]
    public void AFailingTaskSurfacesAsItsOwnException()
    {
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() =>
            KernelThreads.ForEach(100, 2, task =>
            {
                if (task == 57)
                {
                    throw new InvalidOperationException("task 57");
                }
            }));
        Assert.AreEqual("task 57", ex.Message);
    }

    [TestMethod]
    public void WorkRunsOnLibtorchsOpenMpTeamOnLinux()
    {
        using (zeros(1))
        {
        }

        Assert.AreEqual(OperatingSystem.IsLinux(), KernelThreads.UsesOpenMp);
    }

    [TestMethod]
    public void DirectSparseIsBitwiseReproducible()
    {
        var graph = ExpanderGraph.Create("layer1.0.conv1", 32, 32, 4, seed: 3);
        Tensor[] Run()
        {
            manual_seed(7);
            using var layer = new ExpanderConv2d(graph, 3, padding: 1) { Execution = ExpanderExecution.DirectSparse };
            using var x = randn(16, 32, 14, 14).requires_grad_(true);
            using var y = layer.forward(x);
            using var upstream = randn_like(y);
            (y * upstream).sum().backward();
            return new[] { y.detach().clone(), x.grad!.clone(), layer.Weight.grad!.clone() };
        }

        var first = Run();
        for (int repeat = 0; repeat < 3; repeat++)
        {
            var again = Run();
            for (int i = 0; i < first.Length; i++)
            {
                Assert.IsTrue(first[i].eq(again[i]).all().item<bool>(), $"result {i} differs on repeat {repeat}");
            }
        }
    }
}
