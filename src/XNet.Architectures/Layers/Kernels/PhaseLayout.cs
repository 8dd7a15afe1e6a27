using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Lays an input out as the zero-padded 2 x 2 phase planes a stride-2 layer's kernels read, in one pass: phase (a, b) row
/// m, column n of a channel holds input pixel (2m + a - p, 2n + b - p), zero outside the input.
/// </summary>
/// <remarks>
/// Each input row is read once and its even and odd columns are separated in registers; libtorch's padding copy followed
/// by a permuted copy wrote and read the activation twice (0.3-0.6 ms per layer at batch 64, the <c>phases</c> benchmark).
/// </remarks>
internal static unsafe class PhaseLayout
{
    /// <summary>
    /// Writes <paramref name="output"/> (batch, channels, 2, 2, rows, cols) from <paramref name="input"/> (batch, channels,
    /// height, width) with padding <paramref name="padding"/>; rows and cols cover the padded input (slack stays zero).
    /// </summary>
    public static void Split(float* input, float* output, int batch, int channels, int height, int width, int padding, int rows, int cols,
        int threads)
    {
        var (inputAddress, outputAddress) = ((nint)input, (nint)output);
        bool wide = Simd.Wide(width / 2);
        KernelThreads.ForEach((long)batch * channels, threads, task =>
        {
            float* x = (float*)inputAddress + task * height * width, y = (float*)outputAddress + task * 4 * rows * cols;
            new Span<float>(y, 4 * rows * cols).Clear();
            if (wide)
            {
                SplitPlane<Simd512, Vector512<float>>(x, y, height, width, padding, rows, cols);
            }
            else
            {
                SplitPlane<Simd256, Vector256<float>>(x, y, height, width, padding, rows, cols);
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SplitPlane<TSimd, TVector>(float* input, float* output, int height, int width, int padding, int rows, int cols)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        nint plane = (nint)rows * cols;
        // Input column 2t lands in phase column (padding % 2) at n = t + padding / 2; column 2t + 1 in the other at
        // n = t + (padding + 1) / 2.
        nint evenPhase = padding % 2, evenShift = padding / 2, oddShift = (padding + 1) / 2;
        for (int i = 0; i < height; i++)
        {
            int a = (i + padding) % 2, m = (i + padding) / 2;
            float* x = input + (nint)i * width;
            float* even = output + (2 * a + evenPhase) * plane + (nint)m * cols + evenShift;
            float* odd = output + (2 * a + 1 - evenPhase) * plane + (nint)m * cols + oddShift;
            int t0 = 0;
            for (; 2 * (t0 + lanes) <= width; t0 += lanes)
            {
                TVector low = TSimd.Load(x + 2 * t0), high = TSimd.Load(x + 2 * t0 + lanes);
                TSimd.Store(even + t0, TSimd.EvenLanes(low, high));
                TSimd.Store(odd + t0, TSimd.OddLanes(low, high));
            }

            int left = width - 2 * t0;
            if (left > 0)
            {
                TVector low = TSimd.LoadMasked(x + 2 * t0, Math.Min(left, lanes));
                TVector high = left > lanes ? TSimd.LoadMasked(x + 2 * t0 + lanes, left - lanes) : TSimd.Zero;
                TSimd.Store(even + t0, TSimd.EvenLanes(low, high), (left + 1) / 2);
                TSimd.Store(odd + t0, TSimd.OddLanes(low, high), left / 2);
            }
        }
    }
}
