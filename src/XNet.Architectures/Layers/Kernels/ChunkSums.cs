using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// How the 3 x 3 weight-gradient kernels sum over their tasks: each task writes its own partial sum of every weight, and these
/// are added in task order, so the result has the same bits on any number of threads.
/// </summary>
internal static unsafe class ChunkSums
{
    /// <summary>The most partial sums held at once, in floats (16 MB): tasks beyond them run in waves.</summary>
    private const long WaveFloats = 4L << 20;

    /// <summary>The most tasks in one wave, whatever the layer.</summary>
    private const int MaxWave = 64;

    /// <summary>Writes the partial sums of task <c>task</c>, one per value, to <c>sums</c>.</summary>
    public delegate void TaskSums(long task, float* sums);

    /// <summary>
    /// sum[k] = 0 + task 0's [k] + task 1's [k] + ... over tasks [0, <paramref name="tasks"/>), run on up to
    /// <paramref name="threads"/> threads.
    /// </summary>
    /// <remarks>
    /// The tasks run in waves whose partial sums fit <see cref="WaveFloats"/> (and at most <see cref="MaxWave"/> of them),
    /// each wave's total carried into the next as its first term, which keeps the sum in task order: a batch of 256 at
    /// 224 px would otherwise hold 32 chunks of a 512->512 3x3 layer's 590K weights (75 MB) at once. The wave size
    /// depends on the layer only, not on the thread count.
    /// </remarks>
    public static void Run(long tasks, int values, int threads, TaskSums run, float* sum)
    {
        int wave = (int)Math.Min(tasks, Math.Clamp(WaveFloats / values, 1, MaxWave));
        // Slot 0 carries the running total between waves; each task writes every value, so nothing needs clearing.
        var partial = GC.AllocateUninitializedArray<float>(checked((wave + 1) * values), pinned: true);
        float* total = (float*)Unsafe.AsPointer(ref partial[0]), slots = total + values;
        nint slotsAddress = (nint)slots;
        for (long first = 0; first < tasks; first += wave)
        {
            int count = (int)Math.Min(wave, tasks - first);
            long from = first;
            KernelThreads.ForEach(count, threads, i => run(from + i, (float*)slotsAddress + i * values));
            bool last = first + count == tasks;
            if (first == 0)
            {
                Add(slots, count, values, last ? sum : total, threads);
            }
            else
            {
                Add(total, count + 1, values, last ? sum : total, threads);
            }
        }

        GC.KeepAlive(partial);
    }

    /// <summary>
    /// sum[k] = 0 + chunk 0's [k] + chunk 1's [k] + ..., in chunk order, over slices of the values in parallel (512->512
    /// layers have 590K weights, and a sequential pass over 8 chunks of them took a few milliseconds). <paramref name="sum"/>
    /// may be chunk 0 itself.
    /// </summary>
    private static void Add(float* chunkSums, long chunks, int values, float* sum, int threads)
    {
        const int slice = 16 * 1024;
        var (chunksAddress, sumAddress) = ((nint)chunkSums, (nint)sum);
        KernelThreads.ForEach((values + slice - 1) / slice, threads, task =>
        {
            int from = (int)task * slice, to = Math.Min(values, from + slice), k = from;
            float* first = (float*)chunksAddress, y = (float*)sumAddress;
            for (; k + Vector256<float>.Count <= to; k += Vector256<float>.Count)
            {
                var total = Vector256<float>.Zero + Vector256.Load(first + k);
                for (long c = 1; c < chunks; c++)
                {
                    total += Vector256.Load(first + c * values + k);
                }

                total.Store(y + k);
            }

            for (; k < to; k++)
            {
                float total = 0f + first[k];
                for (long c = 1; c < chunks; c++)
                {
                    total += first[c * values + k];
                }

                y[k] = total;
            }
        });
    }
}
