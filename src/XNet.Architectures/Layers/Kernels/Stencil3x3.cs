using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The unit-stride 3 x 3 case of <see cref="SparseCorrelation"/>, register-blocked: a group is one (output plane, input
/// plane) pair with its 9 weights, and each kernel sweeps the input rows once, using every loaded row for all three
/// kernel rows it meets (three output rows in flight), with the 9 weights held in registers.
/// </summary>
/// <remarks>
/// Against the generic kernel (one load per multiply-add plus a weight broadcast), a sweep loads 3 shifted vectors per
/// input row for 9 multiply-adds. Forward and input gradient use <see cref="Correlate"/> (the input gradient with the
/// kernel flipped); the weight gradient uses <see cref="WeightGradient"/>. Inputs carry the same slack as for
/// <see cref="SparseCorrelation"/>.
/// </remarks>
internal static unsafe class Stencil3x3
{
    /// <summary>
    /// output[b, q, i, j] = Σ over groups g of q, u &lt; 3, v &lt; 3: weight[9g + 3u + v] · input[b · inBatch + origin[g] + (i + u) · inRow + j + v].
    /// </summary>
    /// <remarks>
    /// Plane q owns groups [start[q], start[q + 1]); a plane without groups is written as zeros. With
    /// <paramref name="phaseStep"/> above 0 the groups are stride-2 convolutions over 4 phase planes that many elements
    /// apart (<see cref="SparseConvPlan"/>): output[b, q, i, j] = Σ weight[9g + 3u + v] · phase(u mod 2, v mod 2)[i + u / 2, j + v / 2].
    /// </remarks>
    public static void Correlate(float* input, long inBatch, nint inRow, float* output, int batch, int planes, int outH, int outW,
        int* start, nint* origin, float* weight, int threads, nint phaseStep = 0)
    {
        var (inputAddress, outputAddress, originAddress, weightAddress) = ((nint)input, (nint)output, (nint)origin, (nint)weight);
        bool wide = Simd.Wide(outW);
        KernelThreads.ForEachPlane(batch, planes, start, threads, (b, _, task, from, to) =>
        {
            float* x = (float*)inputAddress + b * inBatch, y = (float*)outputAddress + task * outH * outW;
            if (from == to)
            {
                new Span<float>(y, outH * outW).Clear();
            }
            else if (phaseStep > 0)
            {
                if (wide)
                {
                    CorrelatePhasePlane<Simd512, Vector512<float>>(x, inRow, phaseStep, y, outH, outW, from, to, (nint*)originAddress,
                        (float*)weightAddress);
                }
                else
                {
                    CorrelatePhasePlane<Simd256, Vector256<float>>(x, inRow, phaseStep, y, outH, outW, from, to, (nint*)originAddress,
                        (float*)weightAddress);
                }
            }
            else if (wide)
            {
                CorrelatePlane<Simd512, Vector512<float>>(x, inRow, y, outH, outW, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else
            {
                CorrelatePlane<Simd256, Vector256<float>>(x, inRow, y, outH, outW, from, to, (nint*)originAddress, (float*)weightAddress);
            }
        });
    }

    /// <summary>
    /// gradient[9g + 3u + v] = Σ over b, i &lt; outH, j &lt; outW of upstream[b, q(g), i, j] · input[b · inBatch + origin[g] + (i + u) · inRow + j + v].
    /// </summary>
    /// <remarks>
    /// Tasks are chunks of <see cref="BatchChunk"/> batch items, each summing every group over its items, so that a
    /// chunk's input and output-gradient planes stay in the core's cache while all groups read them (by output plane,
    /// each group streamed the whole batch from memory: 1.7x slower in a training step). The chunks' sums are added in
    /// chunk order, so the result does not depend on which thread ran which chunk.
    /// </remarks>
    public static void WeightGradient(float* input, long inBatch, nint inRow, float* upstream, int batch, int planes, int outH, int outW,
        int* start, nint* origin, float* gradient, int threads, nint phaseStep = 0)
    {
        var (inputAddress, upstreamAddress, startAddress, originAddress) = ((nint)input, (nint)upstream, (nint)start, (nint)origin);
        bool wide = Simd.Wide(outW);
        int values = 9 * start[planes], chunks = (batch + BatchChunk - 1) / BatchChunk;
        var partial = new float[chunks][];
        KernelThreads.ForEach(chunks, threads, task =>
        {
            int b0 = (int)task * BatchChunk, count = Math.Min(BatchChunk, batch - b0);
            var sums = partial[task] = new float[values];
            long dyBatch = (long)planes * outH * outW;
            fixed (float* chunkSums = sums)
            {
                for (int q = 0; q < planes; q++)
                {
                    var (from, to) = (((int*)startAddress)[q], ((int*)startAddress)[q + 1]);
                    float* x = (float*)inputAddress + b0 * inBatch, dy = (float*)upstreamAddress + b0 * dyBatch + (long)q * outH * outW;
                    if (phaseStep > 0 && wide)
                    {
                        WeightGradientPhasePlane<Simd512, Vector512<float>>(x, inBatch, inRow, phaseStep, dy, dyBatch, count, outH, outW, from, to,
                            (nint*)originAddress, chunkSums);
                    }
                    else if (phaseStep > 0)
                    {
                        WeightGradientPhasePlane<Simd256, Vector256<float>>(x, inBatch, inRow, phaseStep, dy, dyBatch, count, outH, outW, from, to,
                            (nint*)originAddress, chunkSums);
                    }
                    else if (wide)
                    {
                        WeightGradientPlane<Simd512, Vector512<float>>(x, inBatch, inRow, dy, dyBatch, count, outH, outW, from, to,
                            (nint*)originAddress, chunkSums);
                    }
                    else
                    {
                        WeightGradientPlane<Simd256, Vector256<float>>(x, inBatch, inRow, dy, dyBatch, count, outH, outW, from, to,
                            (nint*)originAddress, chunkSums);
                    }
                }
            }
        });

        new Span<float>(gradient, values).Clear();
        foreach (var sums in partial)
        {
            for (int k = 0; k < values; k++)
            {
                gradient[k] += sums[k];
            }
        }
    }

    /// <summary>Batch items per weight-gradient task: 8 items of a 32x32, 16-channel layer are about 150 KB of input and upstream.</summary>
    private const int BatchChunk = 8;

    /// <summary>
    /// One output plane: the first group stores, the others add. Each group sweeps the plane in vector-wide strips, the
    /// top and bottom halves of a strip side by side: two independent windows give the core six multiply-add chains to
    /// overlap instead of three.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePlane<TSimd, TVector>(float* input, nint inRow, float* output, int outH, int outW, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes, half = (outH + 1) / 2;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
            TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
            TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
            bool add = g > first;
            for (int j0 = 0; j0 < outW; j0 += lanes)
            {
                int valid = outW - j0;
                float* x = input + origin[g] + j0, xLow = x + half * inRow;
                float* y = output + j0, yLow = y + (nint)half * outW;
                // Output rows r - 2 (two kernel rows done) and r - 1 (one done) in flight while input row r is read, in
                // each half; the lower half ends at the plane's last row (a plane of odd height gives it one row less).
                TVector older = TSimd.Zero, old = TSimd.Zero, olderLow = TSimd.Zero, oldLow = TSimd.Zero;
                int lowRows = outH - half;
                for (int r = 0; r < half + 2; r++, x += inRow, xLow += inRow)
                {
                    TVector x0 = TSimd.Load(x), x1 = TSimd.Load(x + 1), x2 = TSimd.Load(x + 2);
                    TVector l0 = TSimd.Load(xLow), l1 = TSimd.Load(xLow + 1), l2 = TSimd.Load(xLow + 2);
                    var fresh = TSimd.MultiplyAdd(w02, x2, TSimd.MultiplyAdd(w01, x1, TSimd.MultiplyAdd(w00, x0, TSimd.Zero)));
                    var freshLow = TSimd.MultiplyAdd(w02, l2, TSimd.MultiplyAdd(w01, l1, TSimd.MultiplyAdd(w00, l0, TSimd.Zero)));
                    old = TSimd.MultiplyAdd(w12, x2, TSimd.MultiplyAdd(w11, x1, TSimd.MultiplyAdd(w10, x0, old)));
                    oldLow = TSimd.MultiplyAdd(w12, l2, TSimd.MultiplyAdd(w11, l1, TSimd.MultiplyAdd(w10, l0, oldLow)));
                    older = TSimd.MultiplyAdd(w22, x2, TSimd.MultiplyAdd(w21, x1, TSimd.MultiplyAdd(w20, x0, older)));
                    olderLow = TSimd.MultiplyAdd(w22, l2, TSimd.MultiplyAdd(w21, l1, TSimd.MultiplyAdd(w20, l0, olderLow)));
                    if (r >= 2)
                    {
                        Emit<TSimd, TVector>(y + (nint)(r - 2) * outW, older, add, valid);
                        if (r - 2 < lowRows)
                        {
                            Emit<TSimd, TVector>(yLow + (nint)(r - 2) * outW, olderLow, add, valid);
                        }
                    }

                    (older, old, olderLow, oldLow) = (old, fresh, oldLow, freshLow);
                }
            }
        }
    }

    /// <summary>Writes (first group) or adds (later groups) one finished output row segment.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit<TSimd, TVector>(float* row, TVector value, bool add, int valid)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct =>
        TSimd.Store(row, add ? TSimd.Add(value, valid >= TSimd.Lanes ? TSimd.Load(row) : TSimd.LoadMasked(row, valid)) : value, valid);

    /// <summary>The 9 gradients of each group of one output plane, summed over the batch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientPlane<TSimd, TVector>(float* input, long inBatch, nint inRow, float* upstream, long upstreamBatch,
        int batch, int outH, int outW, int first, int end, nint* origin, float* gradient)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        for (int g = first; g < end; g++)
        {
            TVector a00 = TSimd.Zero, a01 = TSimd.Zero, a02 = TSimd.Zero, a10 = TSimd.Zero, a11 = TSimd.Zero, a12 = TSimd.Zero;
            TVector a20 = TSimd.Zero, a21 = TSimd.Zero, a22 = TSimd.Zero;
            for (int b = 0; b < batch; b++)
            {
                for (int j0 = 0; j0 < outW; j0 += lanes)
                {
                    int valid = outW - j0;
                    float* x = input + b * inBatch + origin[g] + j0;
                    float* dy = upstream + b * upstreamBatch + j0;
                    // Input row r meets output rows r (kernel row 0), r - 1 (row 1) and r - 2 (row 2); rows outside the
                    // plane are zero, and so are lanes past its width.
                    TVector d1 = TSimd.Zero, d2 = TSimd.Zero;
                    for (int r = 0; r < outH + 2; r++, x += inRow)
                    {
                        TVector d0 = r >= outH ? TSimd.Zero
                            : valid >= lanes ? TSimd.Load(dy + (nint)r * outW) : TSimd.LoadMasked(dy + (nint)r * outW, valid);
                        TVector x0 = TSimd.Load(x), x1 = TSimd.Load(x + 1), x2 = TSimd.Load(x + 2);
                        a00 = TSimd.MultiplyAdd(d0, x0, a00);
                        a01 = TSimd.MultiplyAdd(d0, x1, a01);
                        a02 = TSimd.MultiplyAdd(d0, x2, a02);
                        a10 = TSimd.MultiplyAdd(d1, x0, a10);
                        a11 = TSimd.MultiplyAdd(d1, x1, a11);
                        a12 = TSimd.MultiplyAdd(d1, x2, a12);
                        a20 = TSimd.MultiplyAdd(d2, x0, a20);
                        a21 = TSimd.MultiplyAdd(d2, x1, a21);
                        a22 = TSimd.MultiplyAdd(d2, x2, a22);
                        (d2, d1) = (d1, d0);
                    }
                }
            }

            float* gw = gradient + 9 * g;
            (gw[0], gw[1], gw[2]) = (TSimd.Sum(a00), TSimd.Sum(a01), TSimd.Sum(a02));
            (gw[3], gw[4], gw[5]) = (TSimd.Sum(a10), TSimd.Sum(a11), TSimd.Sum(a12));
            (gw[6], gw[7], gw[8]) = (TSimd.Sum(a20), TSimd.Sum(a21), TSimd.Sum(a22));
        }
    }

    /// <summary>
    /// One output plane of a stride-2 layer: each input phase row r serves output row r (kernel rows 0 and 1) and output
    /// row r - 1 (kernel row 2), so 6 loads feed 9 multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePhasePlane<TSimd, TVector>(float* input, nint inRow, nint phaseStep, float* output, int outH, int outW,
        int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
            TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
            TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
            bool add = g > first;
            for (int j0 = 0; j0 < outW; j0 += lanes)
            {
                int valid = outW - j0;
                float* p00 = input + origin[g] + j0;
                float* y = output + j0;
                TVector old = TSimd.Zero;
                for (int r = 0; r <= outH; r++, p00 += inRow)
                {
                    float* p01 = p00 + phaseStep, p10 = p01 + phaseStep, p11 = p10 + phaseStep;
                    TVector a0 = TSimd.Load(p00), a1 = TSimd.Load(p00 + 1), b0 = TSimd.Load(p01);
                    TVector c0 = TSimd.Load(p10), c1 = TSimd.Load(p10 + 1), d0 = TSimd.Load(p11);
                    var upper = TSimd.MultiplyAdd(w01, b0, TSimd.MultiplyAdd(w02, a1, TSimd.MultiplyAdd(w00, a0, TSimd.Zero)));
                    var middle = TSimd.MultiplyAdd(w11, d0, TSimd.MultiplyAdd(w12, c1, TSimd.MultiplyAdd(w10, c0, TSimd.Zero)));
                    old = TSimd.MultiplyAdd(w21, b0, TSimd.MultiplyAdd(w22, a1, TSimd.MultiplyAdd(w20, a0, old)));
                    if (r >= 1)
                    {
                        Emit<TSimd, TVector>(y + (nint)(r - 1) * outW, old, add, valid);
                    }

                    old = TSimd.Add(upper, middle);
                }
            }
        }
    }

    /// <summary>The 9 gradients of each stride-2 group of one output plane over a run of batch items (the dual of <see cref="CorrelatePhasePlane"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientPhasePlane<TSimd, TVector>(float* input, long inBatch, nint inRow, nint phaseStep, float* upstream,
        long upstreamBatch, int batch, int outH, int outW, int first, int end, nint* origin, float* gradient)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        for (int g = first; g < end; g++)
        {
            TVector a00 = TSimd.Zero, a01 = TSimd.Zero, a02 = TSimd.Zero, a10 = TSimd.Zero, a11 = TSimd.Zero, a12 = TSimd.Zero;
            TVector a20 = TSimd.Zero, a21 = TSimd.Zero, a22 = TSimd.Zero;
            for (int b = 0; b < batch; b++)
            {
                for (int j0 = 0; j0 < outW; j0 += lanes)
                {
                    int valid = outW - j0;
                    float* p00 = input + b * inBatch + origin[g] + j0;
                    float* dy = upstream + b * upstreamBatch + j0;
                    // Phase row r meets output row r (kernel rows 0, 1) and output row r - 1 (kernel row 2).
                    TVector d1 = TSimd.Zero;
                    for (int r = 0; r <= outH; r++, p00 += inRow)
                    {
                        TVector d0 = r >= outH ? TSimd.Zero
                            : valid >= lanes ? TSimd.Load(dy + (nint)r * outW) : TSimd.LoadMasked(dy + (nint)r * outW, valid);
                        float* p01 = p00 + phaseStep, p10 = p01 + phaseStep, p11 = p10 + phaseStep;
                        TVector x00 = TSimd.Load(p00), x02 = TSimd.Load(p00 + 1), x01 = TSimd.Load(p01);
                        TVector x10 = TSimd.Load(p10), x12 = TSimd.Load(p10 + 1), x11 = TSimd.Load(p11);
                        a00 = TSimd.MultiplyAdd(d0, x00, a00);
                        a01 = TSimd.MultiplyAdd(d0, x01, a01);
                        a02 = TSimd.MultiplyAdd(d0, x02, a02);
                        a10 = TSimd.MultiplyAdd(d0, x10, a10);
                        a11 = TSimd.MultiplyAdd(d0, x11, a11);
                        a12 = TSimd.MultiplyAdd(d0, x12, a12);
                        a20 = TSimd.MultiplyAdd(d1, x00, a20);
                        a21 = TSimd.MultiplyAdd(d1, x01, a21);
                        a22 = TSimd.MultiplyAdd(d1, x02, a22);
                        d1 = d0;
                    }
                }
            }

            float* gw = gradient + 9 * g;
            (gw[0], gw[1], gw[2]) = (TSimd.Sum(a00), TSimd.Sum(a01), TSimd.Sum(a02));
            (gw[3], gw[4], gw[5]) = (TSimd.Sum(a10), TSimd.Sum(a11), TSimd.Sum(a12));
            (gw[6], gw[7], gw[8]) = (TSimd.Sum(a20), TSimd.Sum(a21), TSimd.Sum(a22));
        }
    }

    /// <summary>
    /// The input gradient of a stride-2, padding-1 layer, written as the input's 4 phase planes: for each input channel
    /// c, phase (a, b) pixel (m, n) is input pixel (2m + a, 2n + b). Each group (an output plane that reads c, with its 9
    /// weights) sweeps the output gradient once: row r, with its neighbour one column on, feeds phase rows r and r - 1.
    /// </summary>
    /// <remarks>
    /// <paramref name="upstream"/> is the output gradient padded by one row and column on top and left (and enough on
    /// the other sides); <paramref name="origin"/> points at each group's unpadded pixel (0, 0). Output: (batch,
    /// channels, 4, rows, cols) contiguous.
    /// </remarks>
    public static void InputGradientStride2(float* upstream, long upBatch, nint upRow, float* output, int batch, int channels, int rows,
        int cols, int* start, nint* origin, float* weight, int threads)
    {
        var (upstreamAddress, outputAddress, originAddress, weightAddress) = ((nint)upstream, (nint)output, (nint)origin, (nint)weight);
        bool wide = Simd.Wide(cols);
        KernelThreads.ForEachPlane(batch, channels, start, threads, (b, _, task, from, to) =>
        {
            float* dy = (float*)upstreamAddress + b * upBatch, y = (float*)outputAddress + task * 4 * rows * cols;
            if (from == to)
            {
                new Span<float>(y, 4 * rows * cols).Clear();
            }
            else if (wide)
            {
                TransposedPhasePlanes<Simd512, Vector512<float>>(dy, upRow, y, rows, cols, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else
            {
                TransposedPhasePlanes<Simd256, Vector256<float>>(dy, upRow, y, rows, cols, from, to, (nint*)originAddress, (float*)weightAddress);
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedPhasePlanes<TSimd, TVector>(float* upstream, nint upRow, float* output, int rows, int cols, int first,
        int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        nint plane = (nint)rows * cols;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
            TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
            TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
            bool add = g > first;
            for (int j0 = 0; j0 < cols; j0 += lanes)
            {
                int valid = cols - j0;
                float* dy = upstream + origin[g] + j0;
                float* y00 = output + j0, y01 = y00 + plane, y10 = y01 + plane, y11 = y10 + plane;
                // Phase (1, a) row r - 1 also takes output-gradient row r; it is carried from one row to the next.
                TVector carry10 = TSimd.Zero, carry11 = TSimd.Zero;
                for (int r = 0; r <= rows; r++, dy += upRow)
                {
                    TVector d0 = TSimd.Load(dy), d1 = TSimd.Load(dy + 1);
                    if (r >= 1)
                    {
                        nint at = (nint)(r - 1) * cols;
                        Emit<TSimd, TVector>(y10 + at, TSimd.MultiplyAdd(w01, d0, carry10), add, valid);
                        Emit<TSimd, TVector>(y11 + at, TSimd.MultiplyAdd(w02, d0, TSimd.MultiplyAdd(w00, d1, carry11)), add, valid);
                    }

                    if (r < rows)
                    {
                        nint at = (nint)r * cols;
                        Emit<TSimd, TVector>(y00 + at, TSimd.MultiplyAdd(w11, d0, TSimd.Zero), add, valid);
                        Emit<TSimd, TVector>(y01 + at, TSimd.MultiplyAdd(w12, d0, TSimd.MultiplyAdd(w10, d1, TSimd.Zero)), add, valid);
                    }

                    carry10 = TSimd.MultiplyAdd(w21, d0, TSimd.Zero);
                    carry11 = TSimd.MultiplyAdd(w22, d0, TSimd.MultiplyAdd(w20, d1, TSimd.Zero));
                }
            }
        }
    }
}
