using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Unit-stride planes under 8 wide on AVX-512 (7 x 7 at the last stage of a ResNet on 28x28 input, the 6 x 6 and 3 x 3
/// planes of photo models): several batch items side by side in one vector, two in slots of 8 lanes for rows up to 7
/// wide, four in slots of 4 for rows up to 3 wide.
/// </summary>
/// <remarks>
/// Each row is loaded straight into its slot by a masked load, zeros past its width, so every slot's last lane is zero
/// and a one-lane shift brings the zero padding into each row's first and last column; every output row is then the 9
/// taps of the three input rows around it, as on a wide plane. The row-pair kernels these replaced held two rows of one
/// item per vector, spread by a permutation, and needed the pairs starting at even and at odd rows (21 shuffles and 33
/// multiply-adds per group and 7 x 7 item, against 7 and 28.5 here), and left 3 x 3 planes' vectors mostly empty. Measured
/// against them (autograd call, forward + both gradients, 2026-12-05): 64->64 @7 at batch 128 2.28-2.57 -> 2.02-2.08 ms,
/// 256->256 @6 at batch 64 30.7 -> 17.3 ms, 512->512 @3 92.5 -> 29.0 ms. A plane's row sums stay in registers (7 rows)
/// or in a small buffer across its groups (whole vectors, so each store forwards to the next group's load) and are
/// stored once.
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>The most rows a side-by-side plane has: its row sums live on the stack.</summary>
    private const int SideBySideRows = 64;

    /// <summary>Whether a unit-stride plane runs two batch items side by side.</summary>
    private static bool SideBySide(int height, int width) => width < 8 && height <= SideBySideRows && Simd.Allow512;

    /// <summary><see cref="Correlate"/> for <see cref="SideBySide"/> planes: 4 items to a vector up to 3 wide, else 2.</summary>
    private static void CorrelateSideBySide(float* input, long inBatch, float* output, int batch, int planes, int outH, int outW,
        int* start, nint* origin, float* weight, int threads, PlaneEpilogue? epilogue)
    {
        if (outW <= ItemQuad.Slot - 1)
        {
            CorrelateSideBySide<ItemQuad>(input, inBatch, output, batch, planes, outH, outW, start, origin, weight, threads, epilogue);
        }
        else
        {
            CorrelateSideBySide<ItemPair>(input, inBatch, output, batch, planes, outH, outW, start, origin, weight, threads, epilogue);
        }
    }

    /// <summary>Tasks are (run of <typeparamref name="TItems"/>'s items, output plane).</summary>
    private static void CorrelateSideBySide<TItems>(float* input, long inBatch, float* output, int batch, int planes, int outH, int outW,
        int* start, nint* origin, float* weight, int threads, PlaneEpilogue? epilogue)
        where TItems : struct, ISideBySide<TItems>
    {
        var (inputAddress, outputAddress, originAddress, weightAddress) = ((nint)input, (nint)output, (nint)origin, (nint)weight);
        int area = outH * outW, items = TItems.Items;
        long outBatch = (long)planes * area;
        var (whole, rest) = (TItems.Of(outW, items), TItems.Of(outW, batch % items));
        KernelThreads.ForEachPlane((batch + items - 1) / items, planes, start, threads, (index, plane, _, from, to) =>
        {
            int b = items * (int)index, count = Math.Min(items, batch - b);
            float* x = (float*)inputAddress + b * inBatch, y = (float*)outputAddress + b * outBatch + plane * area;
            CorrelateItems(x, inBatch, y, outBatch, count == items ? whole : rest, outH, outW, from, to, (nint*)originAddress,
                (float*)weightAddress);
            for (int k = 0; epilogue != null && k < count; k++)
            {
                epilogue.Apply(y + k * outBatch, plane, area);
            }
        });
    }

    /// <summary>
    /// One output plane of a run of items (fewer than <typeparamref name="TItems"/> holds at the end of a batch: their
    /// lanes are masked out), its row sums held across the plane's groups and stored once (zeros for a plane without groups).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateItems<TItems>(float* input, long inStep, float* output, long outStep, TItems items, int height, int width,
        int first, int end, nint* origin, float* weight)
        where TItems : struct, ISideBySide<TItems>
    {
        if (height == 7)
        {
            CorrelateSevenRows(input, inStep, output, outStep, items, width, first, end, origin, weight);
            return;
        }

        var sums = stackalloc Vector512<float>[height];
        for (int r = 0; r < height; r++)
        {
            sums[r] = Vector512<float>.Zero;
        }

        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g, x = input + origin[g];
            var w00 = Vector512.Create(w[0]); var w01 = Vector512.Create(w[1]); var w02 = Vector512.Create(w[2]);
            var w10 = Vector512.Create(w[3]); var w11 = Vector512.Create(w[4]); var w12 = Vector512.Create(w[5]);
            var w20 = Vector512.Create(w[6]); var w21 = Vector512.Create(w[7]); var w22 = Vector512.Create(w[8]);
            Vector512<float> above = default, aboveLeft = default, aboveRight = default;
            var level = items.Load(x, inStep);
            var (left, right) = (Simd512.ShiftUp(level), Simd512.ShiftDown(level));
            for (int r = 0; r < height; r++)
            {
                var below = r + 1 < height ? items.Load(x + (r + 1) * width, inStep) : Vector512<float>.Zero;
                var (belowLeft, belowRight) = (Simd512.ShiftUp(below), Simd512.ShiftDown(below));
                sums[r] = PairSum(sums[r], aboveLeft, above, aboveRight, left, level, right, belowLeft, below, belowRight,
                    w00, w01, w02, w10, w11, w12, w20, w21, w22);
                (above, aboveLeft, aboveRight) = (level, left, right);
                (level, left, right) = (below, belowLeft, belowRight);
            }
        }

        for (int r = 0; r < height; r++)
        {
            items.Store(output + r * width, outStep, sums[r]);
        }
    }

    /// <summary><see cref="CorrelateItems"/> for 7-row planes, its seven row sums in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateSevenRows<TItems>(float* input, long inStep, float* output, long outStep, TItems items, int width,
        int first, int end, nint* origin, float* weight)
        where TItems : struct, ISideBySide<TItems>
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g, x = input + origin[g];
            var w00 = Vector512.Create(w[0]); var w01 = Vector512.Create(w[1]); var w02 = Vector512.Create(w[2]);
            var w10 = Vector512.Create(w[3]); var w11 = Vector512.Create(w[4]); var w12 = Vector512.Create(w[5]);
            var w20 = Vector512.Create(w[6]); var w21 = Vector512.Create(w[7]); var w22 = Vector512.Create(w[8]);
            var a = items.Load(x, inStep);
            var (aL, aR) = (Simd512.ShiftUp(a), Simd512.ShiftDown(a));
            var b = items.Load(x + width, inStep);
            var (bL, bR) = (Simd512.ShiftUp(b), Simd512.ShiftDown(b));
            // Row 0 has no row above it: its kernel row 0 taps are left out, as row 6's kernel row 2 taps are.
            s0 = Avx512F.FusedMultiplyAdd(w10, aL, s0);
            s0 = Avx512F.FusedMultiplyAdd(w11, a, s0);
            s0 = Avx512F.FusedMultiplyAdd(w12, aR, s0);
            s0 = Avx512F.FusedMultiplyAdd(w20, bL, s0);
            s0 = Avx512F.FusedMultiplyAdd(w21, b, s0);
            s0 = Avx512F.FusedMultiplyAdd(w22, bR, s0);
            var c = items.Load(x + 2 * width, inStep);
            var (cL, cR) = (Simd512.ShiftUp(c), Simd512.ShiftDown(c));
            s1 = PairSum(s1, aL, a, aR, bL, b, bR, cL, c, cR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
            a = items.Load(x + 3 * width, inStep);
            (aL, aR) = (Simd512.ShiftUp(a), Simd512.ShiftDown(a));
            s2 = PairSum(s2, bL, b, bR, cL, c, cR, aL, a, aR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
            b = items.Load(x + 4 * width, inStep);
            (bL, bR) = (Simd512.ShiftUp(b), Simd512.ShiftDown(b));
            s3 = PairSum(s3, cL, c, cR, aL, a, aR, bL, b, bR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
            c = items.Load(x + 5 * width, inStep);
            (cL, cR) = (Simd512.ShiftUp(c), Simd512.ShiftDown(c));
            s4 = PairSum(s4, aL, a, aR, bL, b, bR, cL, c, cR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
            a = items.Load(x + 6 * width, inStep);
            (aL, aR) = (Simd512.ShiftUp(a), Simd512.ShiftDown(a));
            s5 = PairSum(s5, bL, b, bR, cL, c, cR, aL, a, aR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
            s6 = Avx512F.FusedMultiplyAdd(w00, cL, s6);
            s6 = Avx512F.FusedMultiplyAdd(w01, c, s6);
            s6 = Avx512F.FusedMultiplyAdd(w02, cR, s6);
            s6 = Avx512F.FusedMultiplyAdd(w10, aL, s6);
            s6 = Avx512F.FusedMultiplyAdd(w11, a, s6);
            s6 = Avx512F.FusedMultiplyAdd(w12, aR, s6);
        }

        items.Store(output, outStep, s0);
        items.Store(output + width, outStep, s1);
        items.Store(output + 2 * width, outStep, s2);
        items.Store(output + 3 * width, outStep, s3);
        items.Store(output + 4 * width, outStep, s4);
        items.Store(output + 5 * width, outStep, s5);
        items.Store(output + 6 * width, outStep, s6);
    }

    /// <summary>
    /// The 9 gradients of each group of one <see cref="SideBySide"/> output plane over a run of batch items, several at a
    /// time, written to <paramref name="gradient"/>.
    /// </summary>
    private static void WeightGradientSideBySide(float* input, long inBatch, float* upstream, long upstreamBatch, int batch, int height,
        int width, int first, int end, nint* origin, float* gradient)
    {
        if (width <= ItemQuad.Slot - 1)
        {
            WeightGradientSideBySide<ItemQuad>(input, inBatch, upstream, upstreamBatch, batch, height, width, first, end, origin, gradient);
        }
        else
        {
            WeightGradientSideBySide<ItemPair>(input, inBatch, upstream, upstreamBatch, batch, height, width, first, end, origin, gradient);
        }
    }

    /// <remarks>
    /// The output-gradient rows are the same for all of the plane's groups (at density 1/4, a 512-channel layer has 128),
    /// so they are gathered into vectors once, before the groups, rather than by two or four masked loads per row and group.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void WeightGradientSideBySide<TItems>(float* input, long inBatch, float* upstream, long upstreamBatch, int batch,
        int height, int width, int first, int end, nint* origin, float* gradient)
        where TItems : struct, ISideBySide<TItems>
    {
        int step = TItems.Items, runs = (batch + step - 1) / step;
        var (whole, rest) = (TItems.Of(width, step), TItems.Of(width, batch % step));
        // At most 16 items (ItemsPerChunk) of at most 64 rows (SideBySideRows): 32 KB, on 64-byte lines.
        float* buffer = stackalloc float[(runs * height + 1) * Vector512<float>.Count];
        var rows = (Vector512<float>*)(((nint)buffer + 63) & ~(nint)63);
        for (int b = 0, k = 0; b < batch; b += step)
        {
            var items = b + step <= batch ? whole : rest;
            for (int r = 0; r < height; r++, k++)
            {
                rows[k] = items.Load(upstream + b * upstreamBatch + r * width, upstreamBatch);
            }
        }

        for (int g = first; g < end; g++)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default;
            for (int b = 0; b < batch; b += step)
            {
                var items = b + step <= batch ? whole : rest;
                float* x = input + b * inBatch + origin[g];
                var dy = rows + b / step * height;
                Vector512<float> above = default, aboveLeft = default, aboveRight = default;
                var level = items.Load(x, inBatch);
                var (left, right) = (Simd512.ShiftUp(level), Simd512.ShiftDown(level));
                for (int r = 0; r < height; r++)
                {
                    var below = r + 1 < height ? items.Load(x + (r + 1) * width, inBatch) : Vector512<float>.Zero;
                    var (belowLeft, belowRight) = (Simd512.ShiftUp(below), Simd512.ShiftDown(below));
                    GradientTaps(dy[r], aboveLeft, above, aboveRight, left, level, right, belowLeft,
                        below, belowRight, ref a00, ref a01, ref a02, ref a10, ref a11, ref a12, ref a20, ref a21, ref a22);
                    (above, aboveLeft, aboveRight) = (level, left, right);
                    (level, left, right) = (below, belowLeft, belowRight);
                }
            }

            StoreTapSums<Simd512, Vector512<float>>(gradient + 9 * g, a00, a01, a02, a10, a11, a12, a20, a21, a22);
        }
    }

    /// <summary>
    /// How a row of each of several batch items goes into one vector: item k's row in lanes [k · slot, k · slot + width),
    /// every other lane zero, masked-out elements never read or written. A type argument, so that each kernel is compiled
    /// for one item count.
    /// </summary>
    private interface ISideBySide<TSelf>
        where TSelf : struct, ISideBySide<TSelf>
    {
        /// <summary>The items one vector holds.</summary>
        static abstract int Items { get; }

        /// <summary>The lanes of the first <paramref name="count"/> items (at most <see cref="Items"/>) for rows of this width.</summary>
        static abstract TSelf Of(int width, int count);

        /// <summary>The row at <paramref name="row"/> and the next items' rows <paramref name="step"/> elements apart.</summary>
        Vector512<float> Load(float* row, long step);

        /// <summary>Stores the rows of <paramref name="value"/> where <see cref="Load"/> read them.</summary>
        void Store(float* row, long step, Vector512<float> value);
    }

    /// <summary>Two items in slots of 8 lanes: rows up to 7 wide.</summary>
    private readonly struct ItemPair(Vector512<float> first, Vector512<float> second) : ISideBySide<ItemPair>
    {
        public static int Items => 2;

        public static ItemPair Of(int width, int count) => new(ItemLanes(width, 8, 0, count), ItemLanes(width, 8, 1, count));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Load(float* row, long step) =>
#if NET9_0_OR_GREATER
            Avx512F.MaskLoad(row + step - 8, second, Avx512F.MaskLoad(row, first, Vector512<float>.Zero));
#else
            Simd512.LoadMasked(row, first) | Simd512.LoadMasked(row + step - 8, second);
#endif

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(float* row, long step, Vector512<float> value)
        {
            Simd512.StoreMasked(row, first, value);
            Simd512.StoreMasked(row + step - 8, second, value);
        }
    }

    /// <summary>Four items in slots of 4 lanes: rows up to 3 wide.</summary>
    private readonly struct ItemQuad(Vector512<float> first, Vector512<float> second, Vector512<float> third, Vector512<float> fourth)
        : ISideBySide<ItemQuad>
    {
        public const int Slot = 4;

        public static int Items => 4;

        public static ItemQuad Of(int width, int count) =>
            new(ItemLanes(width, Slot, 0, count), ItemLanes(width, Slot, 1, count), ItemLanes(width, Slot, 2, count),
                ItemLanes(width, Slot, 3, count));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Load(float* row, long step) =>
#if NET9_0_OR_GREATER
            Avx512F.MaskLoad(row + 3 * step - 12, fourth, Avx512F.MaskLoad(row + 2 * step - 8, third,
                Avx512F.MaskLoad(row + step - 4, second, Avx512F.MaskLoad(row, first, Vector512<float>.Zero))));
#else
            Simd512.LoadMasked(row, first) | Simd512.LoadMasked(row + step - 4, second) | Simd512.LoadMasked(row + 2 * step - 8, third)
                | Simd512.LoadMasked(row + 3 * step - 12, fourth);
#endif

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(float* row, long step, Vector512<float> value)
        {
            Simd512.StoreMasked(row, first, value);
            Simd512.StoreMasked(row + step - 4, second, value);
            Simd512.StoreMasked(row + 2 * step - 8, third, value);
            Simd512.StoreMasked(row + 3 * step - 12, fourth, value);
        }
    }

    /// <summary>Lanes [k · slot, k · slot + width) for item k of the first <paramref name="count"/>, none past them.</summary>
    private static Vector512<float> ItemLanes(int width, int slot, int k, int count) =>
        k < count ? Vector512.AndNot(Simd512.MaskOf(k * slot + width), Simd512.MaskOf(k * slot)) : Vector512<float>.Zero;
}
