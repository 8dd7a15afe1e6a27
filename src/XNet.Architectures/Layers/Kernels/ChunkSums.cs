using System.Runtime.Intrinsics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The weight gradients' last step: each task of a weight-gradient kernel writes its own partial sum of every weight,
/// and these are added in task order, so the result has the same bits on any number of threads.
/// </summary>
internal static unsafe class ChunkSums
{
    /// <summary>
    /// sum[k] = 0 + chunk 0's [k] + chunk 1's [k] + ..., in chunk order, over slices of the values in parallel: 512->512
    /// layers have 590K weights, and a sequential pass over 8 chunks of them took a few milliseconds.
    /// </summary>
    public static void Add(float* chunkSums, long chunks, int values, float* sum, int threads)
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
