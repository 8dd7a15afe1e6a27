using System.Runtime.CompilerServices;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Unit-stride planes on AVX2 (<see cref="SmallBlocks"/>) in blocks summed one kernel column at a time: 4 or 3 rows of a
/// strip two vectors wide, or 7 or 8 rows of a plane one vector wide. A column's 3 weights, 8 accumulators and one loaded
/// vector fit the 16 registers; the accumulators take every group in turn and are stored once.
/// </summary>
/// <remarks>
/// A block one vector wide that holds a group's 9 weights and a row's 3 shifted vectors
/// (<see cref="CorrelateRowBlock{TSimd, TVector, TReader, TWriter, TBlock}"/>) has room for 4 accumulators only: each takes
/// 9 multiply-adds in a row per group, and with the multiply-add's latency of 4 cycles 4 chains keep at most half of the
/// two multiply-add units busy. Here 8 (or 7) independent chains do, for one more load in three (each input vector is
/// loaded once per kernel column, for the 3 output rows it meets). The plane's edges are loaded masked (cheap on AMD's Zen
/// cores, unlike the masked store), and rows above and below the plane are read from a row of zeros, so that every block
/// runs the same code. The taps are summed in another order than the one-vector block's, so the two differ in rounding.
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>Which edges of the plane a strip two vectors wide touches, as a type argument (no branch in the kernel).</summary>
    private interface IStripEdges
    {
        /// <summary>Whether the strip starts at column 0 (its first vector's left neighbours start with the zero border).</summary>
        static abstract bool Left { get; }

        /// <summary>Whether the strip ends the row (its second vector is masked to the plane's width).</summary>
        static abstract bool Right { get; }
    }

    private readonly struct NoEdge : IStripEdges
    {
        public static bool Left => false;

        public static bool Right => false;
    }

    private readonly struct LeftEdge : IStripEdges
    {
        public static bool Left => true;

        public static bool Right => false;
    }

    private readonly struct RightEdge : IStripEdges
    {
        public static bool Left => false;

        public static bool Right => true;
    }

    private readonly struct BothEdges : IStripEdges
    {
        public static bool Left => true;

        public static bool Right => true;
    }

    /// <summary>
    /// One output plane of a unit-stride layer on AVX2: a plane one vector wide or less whose height is a multiple of 7 or
    /// 8 in blocks of that many rows; otherwise strips two vectors wide while more than one vector's columns are left, and
    /// the last columns (one vector or less) in the one-vector blocks of 4 and 3 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateSmallRowBlocks<TSimd, TVector>(float* input, float* output, int height, int width, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes, j0 = 0;
        // A row of zeros for the rows above and below the plane, read from one column before a strip to one past it.
        float* zeros = stackalloc float[4 * lanes];
        new Span<float>(zeros, 4 * lanes).Clear();
        var blocks = new ColumnBlocks<TSimd, TVector>(input, output, height, width, first, end, origin, weight, zeros + lanes);
        if (width <= lanes && (height % 7 == 0 || height % 8 == 0))
        {
            blocks.Narrow();
            return;
        }

        for (; width - j0 > lanes; j0 += 2 * lanes)
        {
            switch (j0 == 0, width - j0 <= 2 * lanes)
            {
                case (false, false):
                    blocks.Wide<NoEdge>(j0);
                    break;
                case (true, false):
                    blocks.Wide<LeftEdge>(j0);
                    break;
                case (false, true):
                    blocks.Wide<RightEdge>(j0);
                    break;
                default:
                    blocks.Wide<BothEdges>(j0);
                    break;
            }
        }

        if (j0 < width)
        {
            int valid = width - j0;
            for (int b = 0; b < SmallBlockCount(height); b++)
            {
                var (r0, four) = SmallBlock(b, height);
                if (four)
                {
                    var block = new RowBlock<TSimd, TVector, FourRows>(input + j0, output + j0, r0, height, width, valid, first, end, origin, weight);
                    StripKinds.Run(j0, valid, lanes, ref block);
                }
                else
                {
                    var block = new RowBlock<TSimd, TVector, ThreeRows>(input + j0, output + j0, r0, height, width, valid, first, end, origin, weight);
                    StripKinds.Run(j0, valid, lanes, ref block);
                }
            }
        }
    }

    /// <summary>The column-at-a-time blocks of one plane, top to bottom.</summary>
    private readonly struct ColumnBlocks<TSimd, TVector>(float* input, float* output, int height, int width, int first, int end,
        nint* origin, float* weight, float* zeros)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        /// <summary>A plane one vector wide or less, its height a multiple of 7 or 8, in blocks of 7 or 8 rows.</summary>
        public void Narrow()
        {
            var masks = EdgeMasks<TVector>.Of<TSimd>(0, width, 1);
            if (height % 7 == 0)
            {
                for (int r0 = 0; r0 < height; r0 += 7)
                {
                    CorrelateNarrowBlock<TSimd, TVector, SevenRows>(input, output, r0, height, width, first, end, origin, weight, zeros, masks);
                }

                return;
            }

            for (int r0 = 0; r0 < height; r0 += 8)
            {
                CorrelateNarrowBlock<TSimd, TVector, EightRows>(input, output, r0, height, width, first, end, origin, weight, zeros, masks);
            }
        }

        /// <summary>The strip two vectors wide at column <paramref name="j0"/>, in blocks of 4 and 3 rows (<see cref="SmallBlock"/>).</summary>
        public void Wide<TEdges>(int j0)
            where TEdges : struct, IStripEdges
        {
            var masks = EdgeMasks<TVector>.Of<TSimd>(j0, width, 2);
            int valid = Math.Min(TSimd.Lanes, width - j0 - TSimd.Lanes); // the second vector's columns in the plane
            for (int b = 0; b < SmallBlockCount(height); b++)
            {
                var (r0, four) = SmallBlock(b, height);
                if (four)
                {
                    CorrelateWideBlock<TSimd, TVector, TEdges, FourRows>(input + j0, output + j0, r0, height, width, valid, first, end, origin,
                        weight, zeros, masks);
                }
                else
                {
                    CorrelateWideBlock<TSimd, TVector, TEdges, ThreeRows>(input + j0, output + j0, r0, height, width, valid, first, end, origin,
                        weight, zeros, masks);
                }
            }
        }
    }

    /// <summary>
    /// The load masks at a strip's edges (<see cref="IStripEdges"/>): its first vector's left neighbours (in a strip two
    /// vectors wide the only loads of that vector that can leave the plane) and its last vector's loads at each column
    /// shift; each the lanes whose input column is in the plane.
    /// </summary>
    private readonly struct EdgeMasks<TVector>
        where TVector : struct
    {
        private readonly TVector lastLeft, lastCentre, lastRight;

        private EdgeMasks(TVector firstLeft, TVector lastLeft, TVector lastCentre, TVector lastRight) =>
            (FirstLeft, this.lastLeft, this.lastCentre, this.lastRight) = (firstLeft, lastLeft, lastCentre, lastRight);

        /// <summary>The masks of a strip of <paramref name="vectors"/> vectors (1 or 2) at column <paramref name="j0"/>.</summary>
        public static EdgeMasks<TVector> Of<TSimd>(int j0, int width, int vectors)
            where TSimd : struct, ISimd<TVector>
        {
            int last = j0 + (vectors - 1) * TSimd.Lanes;
            return new EdgeMasks<TVector>(InPlane<TSimd>(j0 - 1, width), InPlane<TSimd>(last - 1, width), InPlane<TSimd>(last, width),
                InPlane<TSimd>(last + 1, width));
        }

        /// <summary>The mask of the first vector's loads one column to the left.</summary>
        public TVector FirstLeft { get; }

        /// <summary>The mask of the last vector's loads <paramref name="shift"/> columns off (-1, 0 or 1).</summary>
        public TVector Last(int shift) => shift < 0 ? lastLeft : shift == 0 ? lastCentre : lastRight;

        /// <summary>The lanes of a vector loaded from column <paramref name="column"/> whose columns are in the plane.</summary>
        private static TVector InPlane<TSimd>(int column, int width)
            where TSimd : struct, ISimd<TVector> => TSimd.MaskBetween(-column, width - column);
    }

    /// <summary>
    /// Output rows r0 .. r0 + 2 or 3 (<typeparamref name="TBlock"/>) of a strip two vectors wide: input row r0 - 1 + k meets
    /// output row r0 + k through kernel row 0, r0 + k - 1 through kernel row 1 and r0 + k - 2 through kernel row 2; rows
    /// outside the plane are read from <paramref name="zeros"/>.
    /// </summary>
    /// <remarks>
    /// The three kernel columns are written out, each with its own constant shift: as a loop over the shift, every load of
    /// a first vector at the plane's left edge was masked and the masks were chosen by branches and reloaded from the
    /// stack. Written out, x-resnet-50-4's forward passes of 64->64 @56 and 128->128 @28 take 13-15 % and 18-23 % less
    /// time, their input gradients 3-12 % and 8-11 % less, x-resnet-20-4's 32->32 @14 22 % and 25 % less (AVX2,
    /// 2026-12-08, batch 16 and 128, both forms in one process alternating; 256->256 @14 the same). The sums run in the
    /// same order, so the bits do not change.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateWideBlock<TSimd, TVector, TEdges, TBlock>(float* input, float* output, int r0, int height, int width,
        int valid, int first, int end, nint* origin, float* weight, float* zeros, EdgeMasks<TVector> masks)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TEdges : struct, IStripEdges
        where TBlock : struct, IBlockHeight
    {
        var zero = TSimd.Zero;
        TVector a00 = zero, a01 = zero, a10 = zero, a11 = zero, a20 = zero, a21 = zero, a30 = zero, a31 = zero;
        nint row = width, lanes = TSimd.Lanes;
        bool top = r0 == 0, bottom = r0 + TBlock.Rows == height;
        for (int g = first; g < end; g++)
        {
            float* x = input + origin[g] + r0 * row; // input row r0
            float* above = top ? zeros : x - row, below = bottom ? zeros : x + TBlock.Rows * row;
            float* w = weight + 9 * g;
            // Kernel column 0, then 1, then 2: its 3 weights broadcast once, each input row loaded once for the output rows it
            // meets. Only the first vector's left neighbours (at the plane's left edge) and the last vector's loads can leave the plane.
            TVector w0 = TSimd.Broadcast(w[0]), w1 = TSimd.Broadcast(w[3]), w2 = TSimd.Broadcast(w[6]);
            ShortColumn<TSimd, TVector, TBlock>(TEdges.Left, x - 1, above - 1, row, below - 1, w0, w1, w2, masks.FirstLeft,
                ref a00, ref a10, ref a20, ref a30);
            ShortColumn<TSimd, TVector, TBlock>(TEdges.Right, x + lanes - 1, above + lanes - 1, row, below + lanes - 1, w0, w1, w2,
                masks.Last(-1), ref a01, ref a11, ref a21, ref a31);
            (w0, w1, w2) = (TSimd.Broadcast(w[1]), TSimd.Broadcast(w[4]), TSimd.Broadcast(w[7]));
            ShortColumn<TSimd, TVector, TBlock>(false, x, above, row, below, w0, w1, w2, zero, ref a00, ref a10, ref a20, ref a30);
            ShortColumn<TSimd, TVector, TBlock>(TEdges.Right, x + lanes, above + lanes, row, below + lanes, w0, w1, w2, masks.Last(0),
                ref a01, ref a11, ref a21, ref a31);
            (w0, w1, w2) = (TSimd.Broadcast(w[2]), TSimd.Broadcast(w[5]), TSimd.Broadcast(w[8]));
            ShortColumn<TSimd, TVector, TBlock>(false, x + 1, above + 1, row, below + 1, w0, w1, w2, zero, ref a00, ref a10, ref a20, ref a30);
            ShortColumn<TSimd, TVector, TBlock>(TEdges.Right, x + lanes + 1, above + lanes + 1, row, below + lanes + 1, w0, w1, w2,
                masks.Last(1), ref a01, ref a11, ref a21, ref a31);
        }

        float* y = output + r0 * row;
        StoreWideRow<TSimd, TVector, TEdges>(y, a00, a01, valid);
        StoreWideRow<TSimd, TVector, TEdges>(y + row, a10, a11, valid);
        StoreWideRow<TSimd, TVector, TEdges>(y + 2 * row, a20, a21, valid);
        if (TBlock.Rows == 4)
        {
            StoreWideRow<TSimd, TVector, TEdges>(y + 3 * row, a30, a31, valid);
        }
    }

    /// <summary>
    /// One kernel column (weights <paramref name="w0"/>, <paramref name="w1"/>, <paramref name="w2"/> of kernel rows 0, 1,
    /// 2) on one vector of a block's 3 or 4 rows, its loads <paramref name="masked"/> at the plane's edge.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ShortColumn<TSimd, TVector, TBlock>(bool masked, float* x, float* above, nint row, float* below,
        TVector w0, TVector w1, TVector w2, TVector mask, ref TVector a0, ref TVector a1, ref TVector a2, ref TVector a3)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TBlock : struct, IBlockHeight
    {
        var t = EdgeLoad<TSimd, TVector>(masked, above, mask);
        a0 = TSimd.MultiplyAdd(w0, t, a0);
        t = EdgeLoad<TSimd, TVector>(masked, x, mask);
        a0 = TSimd.MultiplyAdd(w1, t, a0);
        a1 = TSimd.MultiplyAdd(w0, t, a1);
        t = EdgeLoad<TSimd, TVector>(masked, x + row, mask);
        a0 = TSimd.MultiplyAdd(w2, t, a0);
        a1 = TSimd.MultiplyAdd(w1, t, a1);
        a2 = TSimd.MultiplyAdd(w0, t, a2);
        t = EdgeLoad<TSimd, TVector>(masked, x + 2 * row, mask);
        a1 = TSimd.MultiplyAdd(w2, t, a1);
        a2 = TSimd.MultiplyAdd(w1, t, a2);
        if (TBlock.Rows == 4)
        {
            a3 = TSimd.MultiplyAdd(w0, t, a3);
            t = EdgeLoad<TSimd, TVector>(masked, x + 3 * row, mask);
            a2 = TSimd.MultiplyAdd(w2, t, a2);
            a3 = TSimd.MultiplyAdd(w1, t, a3);
            t = EdgeLoad<TSimd, TVector>(masked, below, mask);
            a3 = TSimd.MultiplyAdd(w2, t, a3);
        }
        else
        {
            t = EdgeLoad<TSimd, TVector>(masked, below, mask);
            a2 = TSimd.MultiplyAdd(w2, t, a2);
        }
    }

    /// <summary>A vector of an input row, <paramref name="masked"/> (where a strip meets the plane's edge) or whole.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector EdgeLoad<TSimd, TVector>(bool masked, float* at, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => masked ? TSimd.LoadMasked(at, mask) : TSimd.Load(at);

    /// <summary>
    /// Output rows r0 .. r0 + 6 or 7 (<typeparamref name="TBlock"/>) of a plane one vector wide, as
    /// <see cref="CorrelateWideBlock"/> sums its rows: 7 or 8 accumulators, and the vector masked at both edges.
    /// </summary>
    /// <remarks>
    /// The three kernel columns are written out (<see cref="NarrowColumn"/>), each with its own constant column shift and
    /// edge mask: as a loop over the shift, the mask was chosen by branches and the pointers rebuilt on every pass, and
    /// the 64->64 @7 layers of x-resnet-20-4 ran their forward pass and input gradient 5-13 % slower (2026-12-07).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateNarrowBlock<TSimd, TVector, TBlock>(float* input, float* output, int r0, int height, int width,
        int first, int end, nint* origin, float* weight, float* zeros, EdgeMasks<TVector> masks)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TBlock : struct, IBlockHeight
    {
        var zero = TSimd.Zero;
        TVector a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
        nint row = width;
        bool eight = TBlock.Rows == 8, top = r0 == 0, bottom = r0 + TBlock.Rows == height;
        TVector left = masks.Last(-1), centre = masks.Last(0), right = masks.Last(1);
        for (int g = first; g < end; g++)
        {
            float* x = input + origin[g] + r0 * row; // input row r0
            float* above = top ? zeros : x - row, below = bottom ? zeros : x + TBlock.Rows * row;
            float* w = weight + 9 * g;
            NarrowColumn<TSimd, TVector, TBlock>(above - 1, x - 1, below - 1, row, TSimd.Broadcast(w[0]), TSimd.Broadcast(w[3]),
                TSimd.Broadcast(w[6]), left, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
            NarrowColumn<TSimd, TVector, TBlock>(above, x, below, row, TSimd.Broadcast(w[1]), TSimd.Broadcast(w[4]),
                TSimd.Broadcast(w[7]), centre, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
            NarrowColumn<TSimd, TVector, TBlock>(above + 1, x + 1, below + 1, row, TSimd.Broadcast(w[2]), TSimd.Broadcast(w[5]),
                TSimd.Broadcast(w[8]), right, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        }

        float* y = output + r0 * row;
        TSimd.Store(y, a0, width);
        TSimd.Store(y + row, a1, width);
        TSimd.Store(y + 2 * row, a2, width);
        TSimd.Store(y + 3 * row, a3, width);
        TSimd.Store(y + 4 * row, a4, width);
        TSimd.Store(y + 5 * row, a5, width);
        TSimd.Store(y + 6 * row, a6, width);
        if (eight)
        {
            TSimd.Store(y + 7 * row, a7, width);
        }
    }

    /// <summary>
    /// One kernel column (weights <paramref name="w0"/>, <paramref name="w1"/>, <paramref name="w2"/> of kernel rows 0, 1,
    /// 2) on a block of 7 or 8 rows one vector wide: input row r0 - 1 + k meets output rows r0 + k, r0 + k - 1 and
    /// r0 + k - 2; every load <paramref name="mask"/>ed to the columns in the plane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NarrowColumn<TSimd, TVector, TBlock>(float* above, float* x, float* below, nint row, TVector w0, TVector w1,
        TVector w2, TVector mask, ref TVector a0, ref TVector a1, ref TVector a2, ref TVector a3, ref TVector a4, ref TVector a5,
        ref TVector a6, ref TVector a7)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TBlock : struct, IBlockHeight
    {
        bool eight = TBlock.Rows == 8;
        var t = TSimd.LoadMasked(above, mask);
        a0 = TSimd.MultiplyAdd(w0, t, a0);
        t = TSimd.LoadMasked(x, mask);
        a0 = TSimd.MultiplyAdd(w1, t, a0);
        a1 = TSimd.MultiplyAdd(w0, t, a1);
        t = TSimd.LoadMasked(x + row, mask);
        a0 = TSimd.MultiplyAdd(w2, t, a0);
        a1 = TSimd.MultiplyAdd(w1, t, a1);
        a2 = TSimd.MultiplyAdd(w0, t, a2);
        t = TSimd.LoadMasked(x + 2 * row, mask);
        a1 = TSimd.MultiplyAdd(w2, t, a1);
        a2 = TSimd.MultiplyAdd(w1, t, a2);
        a3 = TSimd.MultiplyAdd(w0, t, a3);
        t = TSimd.LoadMasked(x + 3 * row, mask);
        a2 = TSimd.MultiplyAdd(w2, t, a2);
        a3 = TSimd.MultiplyAdd(w1, t, a3);
        a4 = TSimd.MultiplyAdd(w0, t, a4);
        t = TSimd.LoadMasked(x + 4 * row, mask);
        a3 = TSimd.MultiplyAdd(w2, t, a3);
        a4 = TSimd.MultiplyAdd(w1, t, a4);
        a5 = TSimd.MultiplyAdd(w0, t, a5);
        t = TSimd.LoadMasked(x + 5 * row, mask);
        a4 = TSimd.MultiplyAdd(w2, t, a4);
        a5 = TSimd.MultiplyAdd(w1, t, a5);
        a6 = TSimd.MultiplyAdd(w0, t, a6);
        t = TSimd.LoadMasked(x + 6 * row, mask);
        a5 = TSimd.MultiplyAdd(w2, t, a5);
        a6 = TSimd.MultiplyAdd(w1, t, a6);
        if (eight)
        {
            a7 = TSimd.MultiplyAdd(w0, t, a7);
            t = TSimd.LoadMasked(x + 7 * row, mask);
            a6 = TSimd.MultiplyAdd(w2, t, a6);
            a7 = TSimd.MultiplyAdd(w1, t, a7);
        }

        t = TSimd.LoadMasked(below, mask);
        if (eight)
        {
            a7 = TSimd.MultiplyAdd(w2, t, a7);
        }
        else
        {
            a6 = TSimd.MultiplyAdd(w2, t, a6);
        }
    }

    /// <summary>A row of a strip two vectors wide; at the right edge the second vector's first <paramref name="valid"/> lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWideRow<TSimd, TVector, TEdges>(float* row, TVector first, TVector second, int valid)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TEdges : struct, IStripEdges
    {
        TSimd.Store(row, first);
        if (TEdges.Right)
        {
            TSimd.Store(row + TSimd.Lanes, second, valid);
        }
        else
        {
            TSimd.Store(row + TSimd.Lanes, second);
        }
    }
}
