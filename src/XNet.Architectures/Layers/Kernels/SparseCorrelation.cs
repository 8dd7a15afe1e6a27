using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The two loops every sparse convolution pass reduces to, vectorised (AVX2 + FMA, AVX-512 where present) over
/// contiguous float planes.
/// A "term" is one (input plane offset, weight) pair: an output plane is the weighted sum of its terms' shifted input planes.
/// </summary>
/// <remarks>
/// <para>
/// The forward pass, the input gradient and the weight gradient of a k x k convolution whose output channel o reads only
/// its D input channels are all expressed over such terms (<see cref="SparseConvPlan"/> builds them), so one kernel serves
/// any graph, including the paper's random ones, and its cost is proportional to the edges that exist: D x k x k terms
/// per output plane instead of C_in x k x k. That is the speed-up a weight mask cannot give.
/// </para>
/// <para>
/// Loads are unmasked: every input buffer carries slack rows (zeros) after its last plane, so a vector that runs past
/// a row end reads finite values that are never stored (forward) or are multiplied by masked-out zeros (weight
/// gradient). Stores past a row end are masked.
/// </para>
/// </remarks>
internal static unsafe class SparseCorrelation
{
    /// <summary>Accumulators per tile (8 of the 16+ vector registers: the rest hold the broadcast weight and loads).</summary>
    private const int Accumulators = 8;

    /// <summary>Whether the running CPU has the instructions the kernels need.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Whether the kernels can take this tensor: float32, on the CPU, on a CPU with AVX2 + FMA.</summary>
    public static bool CanRun(Tensor tensor) =>
        IsSupported && tensor.device_type == DeviceType.CPU && tensor.dtype == ScalarType.Float32;

    /// <summary>
    /// The tile the forward kernel uses for an output width: 8 vectors as rows x (vectors per row), with 16-lane vectors
    /// on AVX-512 machines for planes wider than 8, otherwise 8 lanes.
    /// </summary>
    public static (int Rows, int Width) Tile(int outWidth)
    {
        int lanes = Simd.Wide(outWidth) ? Vector512<float>.Count : Vector256<float>.Count;
        int perRow = outWidth > 2 * lanes ? 4 : outWidth > lanes ? 2 : 1;
        return (Accumulators / perRow, perRow * lanes);
    }

    /// <summary>
    /// output[b, q, i, j] = Σ over terms t of q: weight[t] · input[b · inBatch + offset[t] + i · inRow + j], for i &lt; outH, j &lt; outW.
    /// </summary>
    /// <remarks>
    /// The input is read from <c>input + b · inBatch</c> with rows <c>inRow</c> apart, and must hold slack for a whole
    /// <see cref="Tile"/> past the last row a term reaches. The output is (batch, planes, outH, outW) contiguous; a plane
    /// without terms is written as zeros. Plane q owns terms [start[q], start[q + 1]). Work is split over
    /// <c>threads</c> threads (<see cref="KernelThreads"/>) by (batch item, plane).
    /// </remarks>
    public static void Correlate(float* input, long inBatch, int inRow, float* output, int batch, int planes, int outH, int outW,
        int* start, nint* offset, float* weight, int threads, PlaneEpilogue? epilogue = null)
    {
        var (inputAddress, outputAddress, offsetAddress, weightAddress) = ((nint)input, (nint)output, (nint)offset, (nint)weight);
        bool wide = Simd.Wide(outW);
        KernelThreads.ForEachPlane(batch, planes, start, threads, (b, plane, task, from, to) =>
        {
            float* x = (float*)inputAddress + b * inBatch, y = (float*)outputAddress + task * outH * outW;
            if (wide)
            {
                CorrelatePlane<Simd512, Vector512<float>>(x, inRow, y, outH, outW, from, to, (nint*)offsetAddress, (float*)weightAddress);
            }
            else
            {
                CorrelatePlane<Simd256, Vector256<float>>(x, inRow, y, outH, outW, from, to, (nint*)offsetAddress, (float*)weightAddress);
            }

            epilogue?.Apply(y, plane, outH * outW);
        });
    }

    /// <summary>
    /// gradient[t] = Σ over b, i &lt; outH, j &lt; outW of upstream[b, q(t), i, j] · input[b · inBatch + offset[t] + i · inRow + j]:
    /// the weight gradient of <see cref="Correlate"/> for the same terms.
    /// </summary>
    /// <remarks>
    /// <c>upstream</c> is (batch, planes, outH, outW) contiguous; every term range must be a multiple of 8 long (pad with
    /// zero-offset terms, whose gradients are ignored); <c>gradient</c> receives one value per term. Tasks are output
    /// planes, so no two threads add to one value.
    /// </remarks>
    public static void WeightGradient(float* input, long inBatch, int inRow, float* upstream, int batch, int planes, int outH, int outW,
        int* start, nint* offset, float* gradient, int threads)
    {
        var (inputAddress, upstreamAddress, startAddress, offsetAddress, gradientAddress) =
            ((nint)input, (nint)upstream, (nint)start, (nint)offset, (nint)gradient);
        bool wide = Simd.Wide(outW);
        KernelThreads.ForEach(planes, threads, task =>
        {
            int q = (int)task;
            var (from, to) = (((int*)startAddress)[q], ((int*)startAddress)[q + 1]);
            float* x = (float*)inputAddress, dy = (float*)upstreamAddress + (long)q * outH * outW, g = (float*)gradientAddress + from;
            long dyBatch = (long)planes * outH * outW;
            if (wide)
            {
                WeightGradientPlane<Simd512, Vector512<float>>(x, inBatch, inRow, dy, dyBatch, batch, outH, outW, from, to, (nint*)offsetAddress, g);
            }
            else
            {
                WeightGradientPlane<Simd256, Vector256<float>>(x, inBatch, inRow, dy, dyBatch, batch, outH, outW, from, to, (nint*)offsetAddress, g);
            }
        });
    }

    /// <summary>
    /// One output plane, tile by tile. A tile is 8 accumulators, rows x (vectors per row); each term's input rows are
    /// reached through one pointer per row and the vectors of a row at constant displacements, which keeps the inner loop
    /// free of index arithmetic. Each tile shape has its own method so that its 8 accumulators stay in registers.
    /// </summary>
    private static void CorrelatePlane<TSimd, TVector>(float* input, nint inRow, float* output, int outH, int outW, int first, int end,
        nint* offset, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        var (rows, tileWidth) = Tile(outW);
        for (int i0 = 0; i0 < outH; i0 += rows)
        {
            for (int j0 = 0; j0 < outW; j0 += tileWidth)
            {
                var tile = new TileAt(input + i0 * inRow + j0, inRow, output, outH, outW, i0, j0);
                switch (rows)
                {
                    case 2:
                        TwoRows<TSimd, TVector>(tile, first, end, offset, weight);
                        break;
                    case 4:
                        FourRows<TSimd, TVector>(tile, first, end, offset, weight);
                        break;
                    default:
                        EightRows<TSimd, TVector>(tile, first, end, offset, weight);
                        break;
                }
            }
        }
    }

    /// <summary>Where a tile reads (its first input pixel and the input row stride) and writes (its first output pixel in the plane).</summary>
    private readonly struct TileAt(float* input, nint inRow, float* output, int outH, int outW, int i0, int j0)
    {
        public float* Input => input;

        public nint InRow => inRow;

        /// <summary>Stores accumulator k of a tile with <paramref name="perRow"/> vectors per row, masked to the plane.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store<TSimd, TVector>(int perRow, int k, TVector value)
            where TSimd : struct, ISimd<TVector>
            where TVector : struct
        {
            int i = i0 + k / perRow, j = j0 + k % perRow * TSimd.Lanes;
            if (i < outH && j < outW)
            {
                TSimd.Store(output + (long)i * outW + j, value, outW - j);
            }
        }
    }

    /// <summary>A tile of 2 rows x 4 vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoRows<TSimd, TVector>(TileAt tile, int first, int end, nint* offset, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero, a4 = TSimd.Zero, a5 = TSimd.Zero, a6 = TSimd.Zero, a7 = TSimd.Zero;
        float* input = tile.Input;
        nint inRow = tile.InRow, l = TSimd.Lanes;
        for (int t = first; t < end; t++)
        {
            var w = TSimd.Broadcast(weight[t]);
            float* r0 = input + offset[t], r1 = r0 + inRow;
            a0 = TSimd.MultiplyAdd(w, TSimd.Load(r0), a0);
            a1 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + l), a1);
            a2 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + 2 * l), a2);
            a3 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + 3 * l), a3);
            a4 = TSimd.MultiplyAdd(w, TSimd.Load(r1), a4);
            a5 = TSimd.MultiplyAdd(w, TSimd.Load(r1 + l), a5);
            a6 = TSimd.MultiplyAdd(w, TSimd.Load(r1 + 2 * l), a6);
            a7 = TSimd.MultiplyAdd(w, TSimd.Load(r1 + 3 * l), a7);
        }

        StoreTile<TSimd, TVector>(tile, 4, a0, a1, a2, a3, a4, a5, a6, a7);
    }

    /// <summary>A tile of 4 rows x 2 vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRows<TSimd, TVector>(TileAt tile, int first, int end, nint* offset, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero, a4 = TSimd.Zero, a5 = TSimd.Zero, a6 = TSimd.Zero, a7 = TSimd.Zero;
        float* input = tile.Input;
        nint inRow = tile.InRow, l = TSimd.Lanes;
        for (int t = first; t < end; t++)
        {
            var w = TSimd.Broadcast(weight[t]);
            float* r0 = input + offset[t], r2 = r0 + 2 * inRow;
            a0 = TSimd.MultiplyAdd(w, TSimd.Load(r0), a0);
            a1 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + l), a1);
            a2 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + inRow), a2);
            a3 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + inRow + l), a3);
            a4 = TSimd.MultiplyAdd(w, TSimd.Load(r2), a4);
            a5 = TSimd.MultiplyAdd(w, TSimd.Load(r2 + l), a5);
            a6 = TSimd.MultiplyAdd(w, TSimd.Load(r2 + inRow), a6);
            a7 = TSimd.MultiplyAdd(w, TSimd.Load(r2 + inRow + l), a7);
        }

        StoreTile<TSimd, TVector>(tile, 2, a0, a1, a2, a3, a4, a5, a6, a7);
    }

    /// <summary>A tile of 8 rows x 1 vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EightRows<TSimd, TVector>(TileAt tile, int first, int end, nint* offset, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero, a4 = TSimd.Zero, a5 = TSimd.Zero, a6 = TSimd.Zero, a7 = TSimd.Zero;
        float* input = tile.Input;
        nint inRow = tile.InRow;
        for (int t = first; t < end; t++)
        {
            var w = TSimd.Broadcast(weight[t]);
            float* r0 = input + offset[t], r2 = r0 + 2 * inRow, r4 = r2 + 2 * inRow, r6 = r4 + 2 * inRow;
            a0 = TSimd.MultiplyAdd(w, TSimd.Load(r0), a0);
            a1 = TSimd.MultiplyAdd(w, TSimd.Load(r0 + inRow), a1);
            a2 = TSimd.MultiplyAdd(w, TSimd.Load(r2), a2);
            a3 = TSimd.MultiplyAdd(w, TSimd.Load(r2 + inRow), a3);
            a4 = TSimd.MultiplyAdd(w, TSimd.Load(r4), a4);
            a5 = TSimd.MultiplyAdd(w, TSimd.Load(r4 + inRow), a5);
            a6 = TSimd.MultiplyAdd(w, TSimd.Load(r6), a6);
            a7 = TSimd.MultiplyAdd(w, TSimd.Load(r6 + inRow), a7);
        }

        StoreTile<TSimd, TVector>(tile, 1, a0, a1, a2, a3, a4, a5, a6, a7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile<TSimd, TVector>(TileAt tile, int perRow, TVector a0, TVector a1, TVector a2, TVector a3, TVector a4,
        TVector a5, TVector a6, TVector a7)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        tile.Store<TSimd, TVector>(perRow, 0, a0);
        tile.Store<TSimd, TVector>(perRow, 1, a1);
        tile.Store<TSimd, TVector>(perRow, 2, a2);
        tile.Store<TSimd, TVector>(perRow, 3, a3);
        tile.Store<TSimd, TVector>(perRow, 4, a4);
        tile.Store<TSimd, TVector>(perRow, 5, a5);
        tile.Store<TSimd, TVector>(perRow, 6, a6);
        tile.Store<TSimd, TVector>(perRow, 7, a7);
    }

    /// <summary>The gradients of one output plane's terms, 8 at a time, summed over the batch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientPlane<TSimd, TVector>(float* input, long inBatch, int inRow, float* upstream, long upstreamBatch,
        int batch, int outH, int outW, int first, int end, nint* offset, float* gradient)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int groups = (end - first) / Accumulators;
        int fullVectors = outW / TSimd.Lanes, tail = outW % TSimd.Lanes;
        // Partial sums live across the batch loop: heap, because D x k x k terms of a wide layer would overflow the stack.
        Span<TVector> sums = new TVector[end - first];
        for (int b = 0; b < batch; b++)
        {
            float* dy = upstream + b * upstreamBatch;
            float* x = input + b * inBatch;
            for (int g = 0; g < groups; g++)
            {
                nint* at = offset + first + g * Accumulators;
                nint o0 = at[0], o1 = at[1], o2 = at[2], o3 = at[3], o4 = at[4], o5 = at[5], o6 = at[6], o7 = at[7];
                var s = sums.Slice(g * Accumulators, Accumulators);
                TVector a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3], a4 = s[4], a5 = s[5], a6 = s[6], a7 = s[7];
                for (int i = 0; i < outH; i++)
                {
                    float* dyRow = dy + (long)i * outW;
                    float* xRow = x + (long)i * inRow;
                    for (int v = 0; v <= fullVectors; v++)
                    {
                        if (v == fullVectors && tail == 0)
                        {
                            break;
                        }

                        // The last vector of a row reads the upstream masked (zeros past the row end), so whatever the
                        // input holds there (the next row, or slack) adds nothing.
                        var d = v < fullVectors ? TSimd.Load(dyRow + v * TSimd.Lanes) : TSimd.LoadMasked(dyRow + v * TSimd.Lanes, tail);
                        float* p = xRow + v * TSimd.Lanes;
                        a0 = TSimd.MultiplyAdd(d, TSimd.Load(p + o0), a0);
                        a1 = TSimd.MultiplyAdd(d, TSimd.Load(p + o1), a1);
                        a2 = TSimd.MultiplyAdd(d, TSimd.Load(p + o2), a2);
                        a3 = TSimd.MultiplyAdd(d, TSimd.Load(p + o3), a3);
                        a4 = TSimd.MultiplyAdd(d, TSimd.Load(p + o4), a4);
                        a5 = TSimd.MultiplyAdd(d, TSimd.Load(p + o5), a5);
                        a6 = TSimd.MultiplyAdd(d, TSimd.Load(p + o6), a6);
                        a7 = TSimd.MultiplyAdd(d, TSimd.Load(p + o7), a7);
                    }
                }

                (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]) = (a0, a1, a2, a3, a4, a5, a6, a7);
            }
        }

        for (int t = 0; t < end - first; t++)
        {
            gradient[t] = TSimd.Sum(sums[t]);
        }
    }
}
