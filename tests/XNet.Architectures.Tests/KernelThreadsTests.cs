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

    /// <summary>
    /// The weight gradients' task sums: bit for bit the sum in task order, on any thread count, in one wave or several
    /// (150 tasks: waves of 64; 3 tasks of 3M values: waves of one, each wave's total carried into the next).
    /// </summary>
    [TestMethod]
    [DataRow(150L, 10, 2)]
    [DataRow(150L, 10, 1)]
    [DataRow(3L, 3_000_000, 2)]
    [DataRow(1L, 17, 2)]
    public unsafe void TaskSumsAddUpInTaskOrderAcrossWaves(long tasks, int values, int threads)
    {
        using (zeros(1))
        {
        }

        // Parts of very different sizes, so that any other order of the additions rounds differently.
        static float Part(long task, int k) => MathF.Sin(task * 0.37f + k) * MathF.Pow(10, (task + k) % 7);
        var expected = new float[values];
        for (int k = 0; k < values; k++)
        {
            float sum = 0;
            for (long t = 0; t < tasks; t++)
            {
                sum += Part(t, k);
            }

            expected[k] = sum;
        }

        var actual = new float[values];
        fixed (float* sum = actual)
        {
            ChunkSums.Run(tasks, values, threads, (task, sums) =>
            {
                for (int k = 0; k < values; k++)
                {
                    sums[k] = Part(task, k);
                }
            }, sum);
        }

        CollectionAssert.AreEqual(expected, actual);
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
