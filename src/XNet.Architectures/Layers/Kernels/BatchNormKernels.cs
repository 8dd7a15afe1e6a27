using System.Numerics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The passes of a training-mode batch norm over a contiguous (N, C, H, W) float32 tensor, vectorised: per-channel
/// statistics in one pass over memory, the normalisation, and the backward pass's two reductions and input gradient.
/// </summary>
/// <remarks>
/// libtorch 2.10's CPU batch norm gathers its training statistics with scalar double-precision loops, one pass for the
/// mean and another for the variance: measured on the 2-core machine (2026-11-26), its forward took 0.63 ms on a
/// (64, 16, 32, 32) batch whose one-pass vectorised sums take 0.04 ms, and it was 14 % of a ResNet-20 training step.
/// Each channel's statistics are merged plane by plane in a fixed order (Chan et al.'s pairwise update, in double), so
/// they do not depend on the thread count; each plane's own mean and squared deviations are summed in float32 vectors
/// from the cache, which keeps the variance exact to float32 rounding even where the mean is large.
/// </remarks>
internal static unsafe class BatchNormKernels
{
    /// <summary>Per channel, the mean and the biased variance over the batch and the plane.</summary>
    public static void Statistics(float* x, int batch, int channels, int plane, double[] mean, double[] variance, int threads)
    {
        nint address = (nint)x;
        KernelThreads.ForEach(channels, threads, c =>
        {
            double count = 0, channelMean = 0, squares = 0;
            for (int n = 0; n < batch; n++)
            {
                float* p = (float*)address + ((long)n * channels + c) * plane;
                double planeMean = Sum(p, plane) / plane;
                double planeSquares = SquaredDeviations(p, plane, (float)planeMean);
                double total = count + plane, delta = planeMean - channelMean;
                channelMean += delta * plane / total;
                squares += planeSquares + delta * delta * count * plane / total;
                count = total;
            }

            mean[c] = channelMean;
            variance[c] = squares / count;
        });
    }

    /// <summary>y = (x - mean[c]) · scale[c] + shift[c], plane by plane (centred first: no cancellation where the mean is large).</summary>
    public static void Normalize(float* x, float* y, int batch, int channels, int plane, float[] mean, float[] scale, float[] shift,
        int threads)
    {
        var (from, to) = ((nint)x, (nint)y);
        KernelThreads.ForEach((long)batch * channels, threads, task =>
        {
            int c = (int)(task % channels);
            long offset = task * plane;
            Affine((float*)from + offset, mean[c], scale[c], null, 0, (float*)to + offset, plane, shift[c]);
        });
    }

    /// <summary>Per channel, Σ dy and Σ dy · (x - mean[c]): the backward pass's two reductions.</summary>
    public static void GradientSums(float* x, float* dy, int batch, int channels, int plane, float[] mean, double[] sumDy, double[] sumDyX,
        int threads)
    {
        var (xAddress, dyAddress) = ((nint)x, (nint)dy);
        KernelThreads.ForEach(channels, threads, c =>
        {
            double s = 0, sx = 0;
            for (int n = 0; n < batch; n++)
            {
                long offset = ((long)n * channels + c) * plane;
                var (planeSum, planeDot) = SumAndCenteredDot((float*)dyAddress + offset, (float*)xAddress + offset, plane, mean[c]);
                s += planeSum;
                sx += planeDot;
            }

            sumDy[c] = s;
            sumDyX[c] = sx;
        });
    }

    /// <summary>dx = dy · a[c] + (x - mean[c]) · b[c] + k[c], plane by plane.</summary>
    public static void InputGradient(float* x, float* dy, float* dx, int batch, int channels, int plane, float[] mean, float[] a, float[] b,
        float[] k, int threads)
    {
        var (xAddress, dyAddress, dxAddress) = ((nint)x, (nint)dy, (nint)dx);
        KernelThreads.ForEach((long)batch * channels, threads, task =>
        {
            int c = (int)(task % channels);
            long offset = task * plane;
            Affine((float*)xAddress + offset, mean[c], b[c], (float*)dyAddress + offset, a[c], (float*)dxAddress + offset, plane, k[c]);
        });
    }

    private static double Sum(float* p, int length)
    {
        var sum = Vector<float>.Zero;
        int i = 0;
        for (; i + Vector<float>.Count <= length; i += Vector<float>.Count)
        {
            sum += Vector.Load(p + i);
        }

        double total = Vector.Sum(sum);
        for (; i < length; i++)
        {
            total += p[i];
        }

        return total;
    }

    private static double SquaredDeviations(float* p, int length, float mean)
    {
        var centre = new Vector<float>(mean);
        var sum = Vector<float>.Zero;
        int i = 0;
        for (; i + Vector<float>.Count <= length; i += Vector<float>.Count)
        {
            var d = Vector.Load(p + i) - centre;
            sum += d * d;
        }

        double total = Vector.Sum(sum);
        for (; i < length; i++)
        {
            double d = p[i] - mean;
            total += d * d;
        }

        return total;
    }

    private static (double Sum, double Dot) SumAndCenteredDot(float* dy, float* x, int length, float mean)
    {
        var centre = new Vector<float>(mean);
        Vector<float> sum = Vector<float>.Zero, dot = Vector<float>.Zero;
        int i = 0;
        for (; i + Vector<float>.Count <= length; i += Vector<float>.Count)
        {
            var g = Vector.Load(dy + i);
            sum += g;
            dot += g * (Vector.Load(x + i) - centre);
        }

        double s = Vector.Sum(sum), d = Vector.Sum(dot);
        for (; i < length; i++)
        {
            s += dy[i];
            d += dy[i] * (x[i] - mean);
        }

        return (s, d);
    }

    /// <summary>out = (x - centre) · xScale + (dy · dyScale, when <paramref name="dy"/> is given) + shift.</summary>
    private static void Affine(float* x, float centre, float xScale, float* dy, float dyScale, float* output, int length, float shift)
    {
        var (vcentre, vx, vdy, vshift) = (new Vector<float>(centre), new Vector<float>(xScale), new Vector<float>(dyScale), new Vector<float>(shift));
        int i = 0;
        if (dy is null)
        {
            for (; i + Vector<float>.Count <= length; i += Vector<float>.Count)
            {
                Vector.Store(Vector.FusedMultiplyAdd(Vector.Load(x + i) - vcentre, vx, vshift), output + i);
            }

            for (; i < length; i++)
            {
                output[i] = MathF.FusedMultiplyAdd(x[i] - centre, xScale, shift);
            }

            return;
        }

        for (; i + Vector<float>.Count <= length; i += Vector<float>.Count)
        {
            var centred = Vector.FusedMultiplyAdd(Vector.Load(x + i) - vcentre, vx, vshift);
            Vector.Store(Vector.FusedMultiplyAdd(Vector.Load(dy + i), vdy, centred), output + i);
        }

        for (; i < length; i++)
        {
            output[i] = MathF.FusedMultiplyAdd(dy[i], dyScale, MathF.FusedMultiplyAdd(x[i] - centre, xScale, shift));
        }
    }
}
