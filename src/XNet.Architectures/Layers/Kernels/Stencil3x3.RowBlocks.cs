using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Planes computed in blocks of 8 rows (7 where that wastes fewer: <see cref="BlockHeight"/>) whose sums stay in registers
/// across all of the plane's groups, on AVX-512:
/// unit-stride planes over 8 wide (wider than 16 a 16-lane strip at a time, where a plane has few groups: <see cref="InRowBlocks"/>), and stride-2
/// layers whose output rows fit one vector (their 16->32 and 32->64 layers), forward and input gradient. Rows narrower
/// than the vector are masked, and a height that is not a multiple of the block's ends with a block moved up to the last row.
/// On AVX2 (16 registers) unit-stride planes are summed a kernel column at a time (<see cref="CorrelateSmallRowBlocks"/>),
/// and the blocks here are 4 and 3 rows high (<see cref="SmallBlocks"/>), 8-lane strips at a time: the last 8 columns or
/// fewer of a wider unit-stride plane, narrow planes whose height is no multiple of 7 or 8, and stride-2 forward passes
/// over 4 wide.
/// </summary>
/// <remarks>
/// <see cref="CorrelatePlane{TSimd, TVector}"/> sweeps one group at a time and adds each finished row into the stored
/// plane. Here a block's 8 accumulators take every group in turn (8 independent multiply-add chains, 9 links per group)
/// and are stored once, for the price of reading 10 input rows per 8 output rows. The same idea for 8 x 8 planes is
/// <see cref="CorrelateOctet"/>. Measured with the <c>phases</c> benchmark (2026-11-26, batch 64, density 1/4): the
/// 32->32 @16 forward went from 0.49-0.51 to 0.21-0.24 ms in a training step's turn, but on 32 x 32 planes (two strips
/// per row, 4 blocks per strip) DenseNet-BC's 96->24 forward went from 2.8-3.2 to 3.4-3.6 ms, its 24 groups' rows
/// scattered over 96 planes, so wider planes with many groups keep the sweep. Stride-2 blocks read the phase planes as
/// <see cref="PhaseStrip{TSimd, TVector, TWriter}"/> does (forward 0.50 -> 0.36-0.41 ms for 16->32, 0.43 -> 0.26-0.28 ms for
/// 32->64, in the same measurement), and their input gradients, summed by even and odd input column and interleaved at
/// the store as <see cref="TransposedStrip{TSimd, TVector, TReader, TWriter}"/> does, went from 0.60-0.74 to 0.28-0.37 ms.
/// The sums run in another order than the sweeps', so the two differ in rounding.
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>The most output rows per block: 8 accumulators, 9 weights and a row's 3 shifted vectors fit AVX-512's 32 registers.</summary>
    private const int BlockRows = 8;

    /// <summary>
    /// Output rows per block for a plane <paramref name="height"/> rows high: 7 where blocks of 7 compute fewer rows than
    /// blocks of 8 (7, 14 and 28 rows exactly, where blocks of 8 compute 8, 16 and 32: one row in eight for nothing), else 8.
    /// </summary>
    /// <remarks>
    /// The planes of a ResNet on 28x28 input and the 28-, 14- and 7-row planes of one on 224-pixel input. The
    /// <c>phases</c> benchmark (2026-12-06, x-resnet-50-4, batch 16, against blocks of 8): the 128->128 @28 forward
    /// 5.9-6.3 -> 5.4-5.8 ms, the 256->256 @14 forward 6.0-6.2 -> 5.4-5.6 ms (docs/benchmarks.md, "Blocks of 7 rows").
    /// </remarks>
    private static int BlockHeight(int height) => RowsComputed(height, 7) < RowsComputed(height, BlockRows) ? 7 : BlockRows;

    /// <summary>The rows blocks of <paramref name="block"/> rows compute over a plane <paramref name="height"/> rows high.</summary>
    private static int RowsComputed(int height, int block) => (height + block - 1) / block * block;

    /// <summary>A block's height in rows as a type argument, so that each block kernel is compiled for one height.</summary>
    private interface IBlockHeight
    {
        static abstract int Rows { get; }
    }

    private readonly struct ThreeRows : IBlockHeight
    {
        public static int Rows => 3;
    }

    private readonly struct FourRows : IBlockHeight
    {
        public static int Rows => 4;
    }

    private readonly struct SevenRows : IBlockHeight
    {
        public static int Rows => 7;
    }

    private readonly struct EightRows : IBlockHeight
    {
        public static int Rows => 8;
    }

    /// <summary>
    /// Where the block that would start at row <paramref name="r"/> starts: there, or for the last block of a height that
    /// is not a multiple of <paramref name="block"/>, moved up to end at the last row (a few rows computed twice rather
    /// than a shorter block); 0 for a plane shorter than a block, whose rows past the plane are summed and not stored.
    /// </summary>
    private static int BlockStart(int r, int rows, int block) => Math.Max(0, Math.Min(r, rows - block));

    /// <summary>
    /// Whether row blocks are short (4 and 3 rows, <see cref="SmallBlock"/>): AVX2 has 16 vector registers, which hold 4
    /// accumulators beside a group's 9 weights and a row's 3 vectors; with 8 the JIT spilled them. AVX-512 has 32.
    /// </summary>
    private static bool SmallBlocks => !Simd.Allow512;

    /// <summary>How many blocks of 4 rows, then of 3, cover <paramref name="rows"/> rows (<see cref="SmallBlock"/>).</summary>
    private static int SmallBlockCount(int rows) => (rows + 3) / 4;

    /// <summary>
    /// Block <paramref name="b"/> of the blocks of 4 rows, then of 3, that cover <paramref name="rows"/> rows (3 or more)
    /// exactly (7 rows: 4 and 3; 14: 4, 4, 3, 3); 5 rows, which no such mix covers, run blocks of 4 with the last moved up.
    /// </summary>
    private static (int Start, bool Four) SmallBlock(int b, int rows)
    {
        int fours = rows - 3 * SmallBlockCount(rows);
        return fours < 0 ? (BlockStart(4 * b, rows, 4), true) : b < fours ? (4 * b, true) : (4 * fours + 3 * (b - fours), false);
    }

    /// <summary>
    /// Whether a unit-stride plane of <paramref name="groups"/> groups runs in row blocks (on AVX2: over 4 columns wide and at
    /// least 3 rows high, one 8-lane strip to a row or at most 32 groups): AVX-512, more than 8 columns
    /// wide (the masked lanes of a narrower row would waste more than half of each vector), at least a block high, and
    /// one 16-lane strip to a row or, for wider planes (a strip at a time), at most 32 groups.
    /// </summary>
    /// <remarks>
    /// Wide planes with many groups keep the sweep: a block reads 10 rows of each group's input plane, so DenseNet-BC's
    /// 96->24 @32 (48 groups a plane) jumps between 48 planes a block, and its forward pass took 4.5-4.8 ms in row
    /// blocks against 3.8-4.2 swept (the <c>phases</c> benchmark, 2026-12-05). With few groups the stores saved win
    /// (two runs each, against the sweep): x-resnet-20-4's 16->16 @28 (4 groups) forward 1.39-1.44 -> 1.17-1.26 ms and
    /// input gradient 1.38-1.42 -> 1.18-1.27 ms at batch 128; x-resnet-18-4's 64->64 @24 (16 groups) forward 5.8-6.2 ->
    /// 4.8 ms and input gradient 6.1-6.3 -> 4.7 ms at batch 64; x-resnet-50-4's 64->64 @56 (three and a half strips) even.
    /// </remarks>
    private static bool InRowBlocks(int height, int width, int groups) => Simd.Allow512
        ? width > Simd256.Lanes && height >= BlockRows && (width <= Simd512.Lanes || groups <= 32)
        : width > Simd256.Lanes / 2 && height >= 3 && (width <= Simd256.Lanes || groups <= 32);

    /// <summary>
    /// One output plane in row blocks (<see cref="InRowBlocks"/>). A height that is not a multiple of 8 ends with a block
    /// moved up to the plane's last row, which computes a few rows twice rather than running a shorter block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateRowBlocks<TSimd, TVector>(float* input, float* output, int height, int width, int first, int end, nint* origin,
        float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        if (SmallBlocks)
        {
            CorrelateSmallRowBlocks<TSimd, TVector>(input, output, height, width, first, end, origin, weight);
        }
        else if (BlockHeight(height) == SevenRows.Rows)
        {
            CorrelateRowBlocks<TSimd, TVector, SevenRows>(input, output, height, width, first, end, origin, weight);
        }
        else
        {
            CorrelateRowBlocks<TSimd, TVector, EightRows>(input, output, height, width, first, end, origin, weight);
        }
    }

    private static void CorrelateRowBlocks<TSimd, TVector, TBlock>(float* input, float* output, int height, int width, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TBlock : struct, IBlockHeight
    {
        for (int j0 = 0; j0 < width; j0 += TSimd.Lanes)
        {
            int valid = Math.Min(TSimd.Lanes, width - j0);
            for (int r = 0; r < height; r += TBlock.Rows)
            {
                var block = new RowBlock<TSimd, TVector, TBlock>(input + j0, output + j0, BlockStart(r, height, TBlock.Rows), height, width, valid,
                    first, end, origin, weight);
                StripKinds.Run(j0, width - j0, TSimd.Lanes, ref block);
            }
        }
    }

    /// <summary>One block of rows of one strip, for <see cref="StripKinds.Run"/>.</summary>
    private readonly struct RowBlock<TSimd, TVector, TBlock>(float* input, float* output, int r0, int height, int width, int valid, int first,
        int end, nint* origin, float* weight) : IStripWork
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TBlock : struct, IBlockHeight
    {
        public void Run<TReader>(bool partial)
            where TReader : struct, IStripReader
        {
            if (partial)
            {
                CorrelateRowBlock<TSimd, TVector, TReader, StoreMaskedRow, TBlock>(input, output, r0, height, width, valid, first, end, origin, weight);
            }
            else
            {
                CorrelateRowBlock<TSimd, TVector, TReader, StoreRow, TBlock>(input, output, r0, height, width, valid, first, end, origin, weight);
            }
        }
    }

    /// <summary>
    /// Output rows r0 .. r0 + 2, 3, 6 or 7 (<typeparamref name="TBlock"/>): input row r0 - 1 + k meets output row r0 + k
    /// through kernel row 0, r0 + k - 1 through kernel row 1 and r0 + k - 2 through kernel row 2; rows outside the plane
    /// are zero padding, never read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateRowBlock<TSimd, TVector, TReader, TWriter, TBlock>(float* input, float* output, int r0, int height, int width,
        int valid, int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TReader : struct, IStripReader
        where TWriter : struct, IRowWriter
        where TBlock : struct, IBlockHeight
    {
        var zero = TSimd.Zero;
        var mask = TSimd.MaskOf(valid);
        TVector a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
        int rows = TBlock.Rows;
        bool top = r0 > 0, bottom = r0 + rows < height;
        nint row = width;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
            TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
            TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
            float* x = input + origin[g] + r0 * row; // input row r0
            TVector l, c, r;
            if (top)
            {
                TReader.Read<TSimd, TVector>(x - row, mask, out l, out c, out r);
                a0 = Taps3<TSimd, TVector>(a0, l, c, r, w00, w01, w02);
            }

            // Input row r0 + k gives output row r0 + k - 1 its kernel row 2, r0 + k its row 1 and r0 + k + 1 its row 0;
            // the row after the block's last (k = rows) only its last row's kernel row 2, where the plane goes on.
            TReader.Read<TSimd, TVector>(x, mask, out l, out c, out r);
            a0 = Taps3<TSimd, TVector>(a0, l, c, r, w10, w11, w12);
            a1 = Taps3<TSimd, TVector>(a1, l, c, r, w00, w01, w02);
            TReader.Read<TSimd, TVector>(x + row, mask, out l, out c, out r);
            a0 = Taps3<TSimd, TVector>(a0, l, c, r, w20, w21, w22);
            a1 = Taps3<TSimd, TVector>(a1, l, c, r, w10, w11, w12);
            a2 = Taps3<TSimd, TVector>(a2, l, c, r, w00, w01, w02);
            TReader.Read<TSimd, TVector>(x + 2 * row, mask, out l, out c, out r);
            a1 = Taps3<TSimd, TVector>(a1, l, c, r, w20, w21, w22);
            a2 = Taps3<TSimd, TVector>(a2, l, c, r, w10, w11, w12);
            if (rows == 3)
            {
                if (bottom)
                {
                    TReader.Read<TSimd, TVector>(x + 3 * row, mask, out l, out c, out r);
                    a2 = Taps3<TSimd, TVector>(a2, l, c, r, w20, w21, w22);
                }

                continue;
            }

            a3 = Taps3<TSimd, TVector>(a3, l, c, r, w00, w01, w02);
            TReader.Read<TSimd, TVector>(x + 3 * row, mask, out l, out c, out r);
            a2 = Taps3<TSimd, TVector>(a2, l, c, r, w20, w21, w22);
            a3 = Taps3<TSimd, TVector>(a3, l, c, r, w10, w11, w12);
            if (rows == 4)
            {
                if (bottom)
                {
                    TReader.Read<TSimd, TVector>(x + 4 * row, mask, out l, out c, out r);
                    a3 = Taps3<TSimd, TVector>(a3, l, c, r, w20, w21, w22);
                }

                continue;
            }

            a4 = Taps3<TSimd, TVector>(a4, l, c, r, w00, w01, w02);
            TReader.Read<TSimd, TVector>(x + 4 * row, mask, out l, out c, out r);
            a3 = Taps3<TSimd, TVector>(a3, l, c, r, w20, w21, w22);
            a4 = Taps3<TSimd, TVector>(a4, l, c, r, w10, w11, w12);
            a5 = Taps3<TSimd, TVector>(a5, l, c, r, w00, w01, w02);
            TReader.Read<TSimd, TVector>(x + 5 * row, mask, out l, out c, out r);
            a4 = Taps3<TSimd, TVector>(a4, l, c, r, w20, w21, w22);
            a5 = Taps3<TSimd, TVector>(a5, l, c, r, w10, w11, w12);
            a6 = Taps3<TSimd, TVector>(a6, l, c, r, w00, w01, w02);
            TReader.Read<TSimd, TVector>(x + 6 * row, mask, out l, out c, out r);
            a5 = Taps3<TSimd, TVector>(a5, l, c, r, w20, w21, w22);
            a6 = Taps3<TSimd, TVector>(a6, l, c, r, w10, w11, w12);
            if (rows == 8)
            {
                a7 = Taps3<TSimd, TVector>(a7, l, c, r, w00, w01, w02);
                TReader.Read<TSimd, TVector>(x + 7 * row, mask, out l, out c, out r);
                a6 = Taps3<TSimd, TVector>(a6, l, c, r, w20, w21, w22);
                a7 = Taps3<TSimd, TVector>(a7, l, c, r, w10, w11, w12);
                if (bottom)
                {
                    TReader.Read<TSimd, TVector>(x + 8 * row, mask, out l, out c, out r);
                    a7 = Taps3<TSimd, TVector>(a7, l, c, r, w20, w21, w22);
                }
            }
            else if (bottom)
            {
                TReader.Read<TSimd, TVector>(x + 7 * row, mask, out l, out c, out r);
                a6 = Taps3<TSimd, TVector>(a6, l, c, r, w20, w21, w22);
            }
        }

        float* y = output + r0 * row;
        TWriter.Write<TSimd, TVector>(y, a0, mask);
        TWriter.Write<TSimd, TVector>(y + row, a1, mask);
        TWriter.Write<TSimd, TVector>(y + 2 * row, a2, mask);
        if (rows > 3)
        {
            TWriter.Write<TSimd, TVector>(y + 3 * row, a3, mask);
        }

        if (rows > 4)
        {
            TWriter.Write<TSimd, TVector>(y + 4 * row, a4, mask);
            TWriter.Write<TSimd, TVector>(y + 5 * row, a5, mask);
            TWriter.Write<TSimd, TVector>(y + 6 * row, a6, mask);
        }

        if (rows > 7)
        {
            TWriter.Write<TSimd, TVector>(y + 7 * row, a7, mask);
        }
    }

    /// <summary>
    /// Whether a stride-2 plane of <paramref name="groups"/> groups runs in row blocks: on an AVX-512 machine (32 vector
    /// registers), an output row that fits one vector of <paramref name="lanes"/> and fills more than half of it (the CIFAR
    /// ResNets' 16->32 and 32->64 layers, and the same layers at a 28x28 input); on AVX2 (<see cref="SmallBlocks"/>) rows
    /// over half a vector wide, a strip at a time where a plane has at most 32 groups (as <see cref="InRowBlocks"/>).
    /// </summary>
    private static bool PhasesInRowBlocks(int outW, int lanes, int groups) => Simd.Allow512
        ? outW <= lanes && outW > lanes / 2
        : outW > lanes / 2 && (outW <= lanes || groups <= 32);

    /// <summary>
    /// One stride-2 output plane in row blocks over the input's phase planes (<see cref="PhasesInRowBlocks"/>), a strip of
    /// columns at a time, each phase row's next column read as <typeparamref name="TNext"/> says: the last block moved up
    /// to the plane's last row, or for a plane under 8 rows one block whose rows past the plane are summed and not stored
    /// (on AVX2, blocks of 4 and 3 rows that cover the plane: <see cref="SmallBlock"/>). Its reads stay inside the slack
    /// rows <see cref="SparseConvPlan"/> gives the phase planes, which cover whole tiles of 8 output rows a vector wide.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePhaseRowBlocks<TSimd, TVector, TNext>(float* input, nint inRow, nint phaseStep, float* output, int outH,
        int outW, int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TNext : struct, IPhaseNext
    {
        for (int j0 = 0; j0 < outW; j0 += TSimd.Lanes)
        {
            var strip = new PhaseStripBlocks(input + j0, inRow, phaseStep, output + j0, outH, outW, Math.Min(TSimd.Lanes, outW - j0), first, end,
                origin, weight);
            if (SmallBlocks)
            {
                for (int b = 0; b < SmallBlockCount(outH); b++)
                {
                    var (r0, four) = SmallBlock(b, outH);
                    if (four)
                    {
                        strip.Run<TSimd, TVector, TNext, FourRows>(r0);
                    }
                    else
                    {
                        strip.Run<TSimd, TVector, TNext, ThreeRows>(r0);
                    }
                }
            }
            else if (BlockHeight(outH) == SevenRows.Rows)
            {
                strip.RunAll<TSimd, TVector, TNext, SevenRows>();
            }
            else
            {
                strip.RunAll<TSimd, TVector, TNext, EightRows>();
            }
        }
    }

    /// <summary>One strip of a stride-2 plane, run a block at a time.</summary>
    private readonly struct PhaseStripBlocks(float* input, nint inRow, nint phaseStep, float* output, int outH, int outW, int valid, int first,
        int end, nint* origin, float* weight)
    {
        /// <summary>The block of <typeparamref name="TBlock"/> rows from row <paramref name="r0"/>; rows past the plane are not stored.</summary>
        public void Run<TSimd, TVector, TNext, TBlock>(int r0)
            where TSimd : struct, ISimd<TVector>
            where TVector : struct
            where TNext : struct, IPhaseNext
            where TBlock : struct, IBlockHeight =>
            CorrelatePhaseRowBlock<TSimd, TVector, TNext, TBlock>(input + r0 * inRow, inRow, phaseStep, output + r0 * outW, outW, valid,
                Math.Min(TBlock.Rows, outH - r0), first, end, origin, weight);

        /// <summary>Blocks of <typeparamref name="TBlock"/> rows over the plane, the last moved up to its last row.</summary>
        public void RunAll<TSimd, TVector, TNext, TBlock>()
            where TSimd : struct, ISimd<TVector>
            where TVector : struct
            where TNext : struct, IPhaseNext
            where TBlock : struct, IBlockHeight
        {
            for (int r = 0; r < outH; r += TBlock.Rows)
            {
                Run<TSimd, TVector, TNext, TBlock>(BlockStart(r, outH, TBlock.Rows));
            }
        }
    }

    /// <summary>
    /// Output rows r0 .. r0 + 2, 3, 6 or 7 (<typeparamref name="TBlock"/>) of one strip of a stride-2 plane
    /// (<see cref="PhaseStrip{TSimd, TVector, TWriter}"/>'s taps), of which the first <paramref name="rows"/> are stored,
    /// <paramref name="valid"/> columns of each: phase row r0 + k gives output row r0 + k its kernel rows 0 and 1 and
    /// output row r0 + k - 1 its kernel row 2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePhaseRowBlock<TSimd, TVector, TNext, TBlock>(float* input, nint inRow, nint phaseStep, float* output, int outW,
        int valid, int rows, int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TNext : struct, IPhaseNext
        where TBlock : struct, IBlockHeight
    {
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero, a4 = TSimd.Zero, a5 = TSimd.Zero, a6 = TSimd.Zero;
        TVector a7 = TSimd.Zero;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
            TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
            TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
            float* p = input + origin[g];
            // Phase row (0, ·) of the current output row: even columns j and j + 1 of phase (0, 0), and phase (0, 1).
            TVector even = TSimd.Load(p), odd = TSimd.Load(p + phaseStep), next = TNext.Next<TSimd, TVector>(p, even);
            a0 = PhaseBlockRow<TSimd, TVector, TNext>(a0, p, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10, w11, w12, w20, w21,
                w22);
            a1 = PhaseBlockRow<TSimd, TVector, TNext>(a1, p + 1 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10, w11,
                w12, w20, w21, w22);
            a2 = PhaseBlockRow<TSimd, TVector, TNext>(a2, p + 2 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10, w11,
                w12, w20, w21, w22);
            if (TBlock.Rows > 3)
            {
                a3 = PhaseBlockRow<TSimd, TVector, TNext>(a3, p + 3 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10,
                    w11, w12, w20, w21, w22);
            }

            if (TBlock.Rows > 4)
            {
                a4 = PhaseBlockRow<TSimd, TVector, TNext>(a4, p + 4 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10,
                    w11, w12, w20, w21, w22);
                a5 = PhaseBlockRow<TSimd, TVector, TNext>(a5, p + 5 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10,
                    w11, w12, w20, w21, w22);
                a6 = PhaseBlockRow<TSimd, TVector, TNext>(a6, p + 6 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10,
                    w11, w12, w20, w21, w22);
            }

            if (TBlock.Rows > 7)
            {
                a7 = PhaseBlockRow<TSimd, TVector, TNext>(a7, p + 7 * inRow, inRow, phaseStep, ref even, ref odd, ref next, w00, w01, w02, w10,
                    w11, w12, w20, w21, w22);
            }
        }

        // Rows past the plane are not written.
        nint row = outW;
        TSimd.Store(output, a0, valid);
        StoreRowIf<TSimd, TVector>(rows > 1, output + row, a1, valid);
        StoreRowIf<TSimd, TVector>(rows > 2, output + 2 * row, a2, valid);
        StoreRowIf<TSimd, TVector>(rows > 3, output + 3 * row, a3, valid);
        StoreRowIf<TSimd, TVector>(rows > 4, output + 4 * row, a4, valid);
        StoreRowIf<TSimd, TVector>(rows > 5, output + 5 * row, a5, valid);
        StoreRowIf<TSimd, TVector>(rows > 6, output + 6 * row, a6, valid);
        StoreRowIf<TSimd, TVector>(rows > 7, output + 7 * row, a7, valid);
    }

    /// <summary>How a stride-2 block reads a phase row one column on from the vector it loaded at the same place.</summary>
    private interface IPhaseNext
    {
        static abstract TVector Next<TSimd, TVector>(float* at, TVector loaded)
            where TSimd : struct, ISimd<TVector>
            where TVector : struct;
    }

    /// <summary>Loaded: rows as wide as the vector, whose next column lies past it.</summary>
    private readonly struct LoadedNext : IPhaseNext
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TVector Next<TSimd, TVector>(float* at, TVector loaded)
            where TSimd : struct, ISimd<TVector>
            where TVector : struct => TSimd.Load(at + 1);
    }

    /// <summary>
    /// Shifted: output rows narrower than the vector, whose phase rows' column outW (the last one an output column reads)
    /// already lies in the loaded vector.
    /// </summary>
    private readonly struct ShiftedNext : IPhaseNext
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TVector Next<TSimd, TVector>(float* at, TVector loaded)
            where TSimd : struct, ISimd<TVector>
            where TVector : struct => TSimd.ShiftDown(loaded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowIf<TSimd, TVector>(bool inside, float* row, TVector value, int width)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        if (inside)
        {
            TSimd.Store(row, value, width);
        }
    }

    /// <summary>
    /// sum + one stride-2 output row's 9 taps: kernel row 0 from the phase-(0, ·) row passed in, kernel row 1 from phase
    /// (1, ·) at <paramref name="p00"/>, kernel row 2 from the next phase-(0, ·) row, which is handed back for the row below.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector PhaseBlockRow<TSimd, TVector, TNext>(TVector sum, float* p00, nint inRow, nint phaseStep, ref TVector even,
        ref TVector odd, ref TVector next, TVector w00, TVector w01, TVector w02, TVector w10, TVector w11, TVector w12, TVector w20,
        TVector w21, TVector w22)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TNext : struct, IPhaseNext
    {
        sum = TSimd.MultiplyAdd(w02, next, TSimd.MultiplyAdd(w01, odd, TSimd.MultiplyAdd(w00, even, sum)));
        float* p10 = p00 + 2 * phaseStep;
        var middle = TSimd.Load(p10);
        sum = TSimd.MultiplyAdd(w10, middle, sum);
        sum = TSimd.MultiplyAdd(w12, TNext.Next<TSimd, TVector>(p10, middle), TSimd.MultiplyAdd(w11, TSimd.Load(p10 + phaseStep), sum));
        float* below = p00 + inRow;
        (even, odd) = (TSimd.Load(below), TSimd.Load(below + phaseStep));
        next = TNext.Next<TSimd, TVector>(below, even);
        return TSimd.MultiplyAdd(w22, next, TSimd.MultiplyAdd(w21, odd, TSimd.MultiplyAdd(w20, even, sum)));
    }

    /// <summary>
    /// Whether a stride-2 input gradient of a channel read by <paramref name="groups"/> groups runs in row blocks: on an
    /// AVX-512 machine, an even input height of at least one block and width whose output-gradient rows (half as wide)
    /// fill more than half of their last vector of <paramref name="lanes"/>, in one vector or, with at most 32 groups
    /// (as <see cref="InRowBlocks"/>), in several.
    /// </summary>
    /// <remarks>
    /// Several strips (2026-12-05, <c>phases</c>, two runs against the sweep): x-resnet-50-4's 128->128 3x3/2 @56 (28-column
    /// strips of 16 and 12, 32 groups) input gradient 10.6-11.0 -> 8.3-8.9 ms at batch 16.
    /// </remarks>
    private static bool TransposedInRowBlocks(int height, int width, int lanes, int groups)
    {
        int cols = width / 2, last = (cols - 1) % lanes + 1;
        return Simd.Allow512 && width % 2 == 0 && height % 2 == 0 && height >= BlockRows && last > lanes / 2 && (cols <= lanes || groups <= 32);
    }

    /// <summary>
    /// One input channel's gradient in blocks of 8 or 6 input rows (<see cref="TransposedInRowBlocks"/>), a strip of
    /// output-gradient columns at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedRowBlocks<TSimd, TVector>(float* upstream, float* output, int height, int width, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int rows = height / 2, cols = width / 2, lanes = TSimd.Lanes;
        // Blocks of 4 output-gradient rows, then of 3 (14 rows: 4, 4, 3, 3, where blocks of 4 moved up compute 16).
        for (int j0 = 0; j0 < cols; j0 += lanes)
        {
            int valid = Math.Min(lanes, cols - j0), high = 2 * valid - lanes; // input columns in the upper, interleaved half
            for (int b = 0; b < SmallBlockCount(rows); b++)
            {
                var (r0, four) = SmallBlock(b, rows);
                float* y = output + 2 * r0 * width + 2 * j0;
                var block = new TransposedBlock<TSimd, TVector>(upstream + j0, y, r0, rows, width, valid, high, first, end, origin, weight);
                switch (j0 + lanes < cols, four)
                {
                    case (true, true):
                        block.Run<InnerPairs, FourRows>();
                        break;
                    case (true, false):
                        block.Run<InnerPairs, ThreeRows>();
                        break;
                    case (false, true):
                        block.Run<LastPairs, FourRows>();
                        break;
                    default:
                        block.Run<LastPairs, ThreeRows>();
                        break;
                }
            }
        }
    }

    /// <summary>One block of <see cref="TransposedRowBlocks"/>, run for its strip's pair reader and its height.</summary>
    private readonly struct TransposedBlock<TSimd, TVector>(float* upstream, float* output, int r0, int rows, int width, int valid, int high,
        int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        public void Run<TPairs, TBlock>()
            where TPairs : struct, IPairReader
            where TBlock : struct, IBlockHeight =>
            TransposedRowBlock<TSimd, TVector, TPairs, TBlock>(upstream, output, r0, rows, width, valid, high, first, end, origin, weight);
    }

    /// <summary>
    /// Input rows 2r0 .. 2r0 + 5 or 2r0 + 7 of one channel's strip, from output-gradient rows r0 .. r0 + 2 or r0 + 3
    /// (<typeparamref name="TBlock"/>; <see cref="TransposedStrip{TSimd, TVector, TReader, TWriter}"/>'s taps):
    /// output-gradient row r gives input row 2r its kernel row 1, and input row 2r + 1 its kernel row 2 and, from row
    /// r + 1, its kernel row 0. Even and odd input columns are summed apart and interleaved at the store.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedRowBlock<TSimd, TVector, TPairs, TBlock>(float* upstream, float* output, int r0, int rows, int width,
        int valid, int high, int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TPairs : struct, IPairReader
        where TBlock : struct, IBlockHeight
    {
        TVector e0 = TSimd.Zero, e1 = TSimd.Zero, e2 = TSimd.Zero, e3 = TSimd.Zero, e4 = TSimd.Zero, e5 = TSimd.Zero, e6 = TSimd.Zero;
        TVector e7 = TSimd.Zero, o0 = TSimd.Zero, o1 = TSimd.Zero, o2 = TSimd.Zero, o3 = TSimd.Zero, o4 = TSimd.Zero, o5 = TSimd.Zero;
        TVector o6 = TSimd.Zero, o7 = TSimd.Zero;
        nint cols = width / 2;
        var mask = TSimd.MaskOf(valid);
        bool four = TBlock.Rows == 4, below = r0 + TBlock.Rows < rows;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
            TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
            TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
            float* dy = upstream + origin[g] + r0 * cols;
            // d: the output-gradient row; n: the same row one column on (zero past the row's end).
            TPairs.Read<TSimd, TVector>(dy, mask, out var d, out var n);
            TransposedTaps<TSimd, TVector>(ref e0, ref o0, d, n, w11, w12, w10);
            TransposedTaps<TSimd, TVector>(ref e1, ref o1, d, n, w21, w22, w20);
            TPairs.Read<TSimd, TVector>(dy + cols, mask, out d, out n);
            TransposedTaps<TSimd, TVector>(ref e1, ref o1, d, n, w01, w02, w00);
            TransposedTaps<TSimd, TVector>(ref e2, ref o2, d, n, w11, w12, w10);
            TransposedTaps<TSimd, TVector>(ref e3, ref o3, d, n, w21, w22, w20);
            TPairs.Read<TSimd, TVector>(dy + 2 * cols, mask, out d, out n);
            TransposedTaps<TSimd, TVector>(ref e3, ref o3, d, n, w01, w02, w00);
            TransposedTaps<TSimd, TVector>(ref e4, ref o4, d, n, w11, w12, w10);
            TransposedTaps<TSimd, TVector>(ref e5, ref o5, d, n, w21, w22, w20);
            if (four)
            {
                TPairs.Read<TSimd, TVector>(dy + 3 * cols, mask, out d, out n);
                TransposedTaps<TSimd, TVector>(ref e5, ref o5, d, n, w01, w02, w00);
                TransposedTaps<TSimd, TVector>(ref e6, ref o6, d, n, w11, w12, w10);
                TransposedTaps<TSimd, TVector>(ref e7, ref o7, d, n, w21, w22, w20);
                if (below)
                {
                    TPairs.Read<TSimd, TVector>(dy + 4 * cols, mask, out d, out n);
                    TransposedTaps<TSimd, TVector>(ref e7, ref o7, d, n, w01, w02, w00);
                }
            }
            else if (below)
            {
                TPairs.Read<TSimd, TVector>(dy + 3 * cols, mask, out d, out n);
                TransposedTaps<TSimd, TVector>(ref e5, ref o5, d, n, w01, w02, w00);
            }
        }

        nint row = width;
        StoreInterleaved<TSimd, TVector>(output, e0, o0, high);
        StoreInterleaved<TSimd, TVector>(output + row, e1, o1, high);
        StoreInterleaved<TSimd, TVector>(output + 2 * row, e2, o2, high);
        StoreInterleaved<TSimd, TVector>(output + 3 * row, e3, o3, high);
        StoreInterleaved<TSimd, TVector>(output + 4 * row, e4, o4, high);
        StoreInterleaved<TSimd, TVector>(output + 5 * row, e5, o5, high);
        if (four)
        {
            StoreInterleaved<TSimd, TVector>(output + 6 * row, e6, o6, high);
            StoreInterleaved<TSimd, TVector>(output + 7 * row, e7, o7, high);
        }
    }

    /// <summary>One kernel row's taps on an input row: its even columns take w[u][1]·d, its odd columns w[u][2]·d + w[u][0]·n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposedTaps<TSimd, TVector>(ref TVector even, ref TVector odd, TVector d, TVector n, TVector wEven, TVector wOdd,
        TVector wNext)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        even = TSimd.MultiplyAdd(wEven, d, even);
        odd = TSimd.MultiplyAdd(wNext, n, TSimd.MultiplyAdd(wOdd, d, odd));
    }

    /// <summary>One input row from its even and odd columns, <paramref name="high"/> of them in the upper half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInterleaved<TSimd, TVector>(float* row, TVector even, TVector odd, int high)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        TSimd.Store(row, TSimd.InterleaveLow(even, odd));
        TSimd.Store(row + TSimd.Lanes, TSimd.InterleaveHigh(even, odd), high);
    }

    /// <summary>sum + one kernel row's three taps on one input row's left, centre and right neighbours.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Taps3<TSimd, TVector>(TVector sum, TVector left, TVector centre, TVector right, TVector wLeft, TVector wCentre,
        TVector wRight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct =>
        TSimd.MultiplyAdd(wRight, right, TSimd.MultiplyAdd(wCentre, centre, TSimd.MultiplyAdd(wLeft, left, sum)));
}
