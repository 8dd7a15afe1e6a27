using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The unit-stride 3 x 3 case of <see cref="SparseCorrelation"/>, register-blocked: a group is one (output plane, input
/// plane) pair with its 9 weights, and each kernel sweeps the input rows once, using every loaded row for all three
/// kernel rows it meets (three output rows in flight), with the 9 weights held in registers.
/// </summary>
/// <remarks>
/// Against the generic kernel (one load per multiply-add plus a weight broadcast), a sweep loads 3 shifted vectors per
/// input row for 9 multiply-adds. Forward and input gradient use <see cref="Correlate"/> (the input gradient with the
/// kernel flipped); the weight gradient uses <see cref="WeightGradient"/>. Unit-stride layers (padding 1) read unpadded
/// planes: the zero border is never stored, the kernels skip the rows above and below a plane and shift zeros into the
/// vectors at its left and right edges (<see cref="IStripReader"/>). Measured against padded copies (2026-11-26, the
/// <c>phases</c> benchmark), this removed the input's layout copy (0.1-1.2 ms per layer at batch 64) and the output
/// gradient's, and one activation-sized buffer per layer kept for the backward pass. Stride-2 layers read the input's
/// padded phase planes, with the same slack as <see cref="SparseCorrelation"/>.
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>
    /// output[b, q, i, j] = Σ over groups g of q, u &lt; 3, v &lt; 3: weight[9g + 3u + v] · x(g)[i + u - 1, j + v - 1], where
    /// x(g) is the outH x outW plane at input[b · inBatch + origin[g]] and zero outside it.
    /// </summary>
    /// <remarks>
    /// Plane q owns groups [start[q], start[q + 1]); a plane without groups is written as zeros. An
    /// <paramref name="epilogue"/> is applied to each plane once it is summed. With
    /// <paramref name="phaseStep"/> above 0 the groups are stride-2 convolutions over 4 phase planes that many elements
    /// apart (<see cref="SparseConvPlan"/>): output[b, q, i, j] = Σ weight[9g + 3u + v] · phase(u mod 2, v mod 2)[i + u / 2, j + v / 2].
    /// </remarks>
    public static void Correlate(float* input, long inBatch, nint inRow, float* output, int batch, int planes, int outH, int outW,
        int* start, nint* origin, float* weight, int threads, nint phaseStep = 0, PlaneEpilogue? epilogue = null)
    {
        if (phaseStep == 0 && SideBySide(outH, outW))
        {
            CorrelateSideBySide(input, inBatch, output, batch, planes, outH, outW, start, origin, weight, threads, epilogue);
            return;
        }

        var (inputAddress, outputAddress, originAddress, weightAddress) = ((nint)input, (nint)output, (nint)origin, (nint)weight);
        bool wide = Simd.Wide(outW);
        KernelThreads.ForEachPlane(batch, planes, start, threads, (b, plane, task, from, to) =>
        {
            float* x = (float*)inputAddress + b * inBatch, y = (float*)outputAddress + task * outH * outW;
            if (from == to)
            {
                new Span<float>(y, outH * outW).Clear();
            }
            else if (phaseStep > 0)
            {
                if (wide && PhasesInRowBlocks(outW, Simd512.Lanes, to - from) && outW < Simd512.Lanes)
                {
                    // The next column by a lane permute: on 16 lanes cheaper than the load it replaces, which crosses a cache
                    // line (the 256->256 3x3/2 @28 forward of x-resnet-50-4 8.7-9.9 -> 7.8-7.9 ms at batch 16); on 8 lanes
                    // not (the 7-wide 512->512 3x3/2 @14 9.6-10.5 -> 10.0-11.0 ms).
                    CorrelatePhaseRowBlocks<Simd512, Vector512<float>, ShiftedNext>(x, inRow, phaseStep, y, outH, outW, from, to,
                        (nint*)originAddress, (float*)weightAddress);
                }
                else if (wide && PhasesInRowBlocks(outW, Simd512.Lanes, to - from))
                {
                    CorrelatePhaseRowBlocks<Simd512, Vector512<float>, LoadedNext>(x, inRow, phaseStep, y, outH, outW, from, to,
                        (nint*)originAddress, (float*)weightAddress);
                }
                else if (!wide && PhasesInRowBlocks(outW, Simd256.Lanes, to - from))
                {
                    CorrelatePhaseRowBlocks<Simd256, Vector256<float>, LoadedNext>(x, inRow, phaseStep, y, outH, outW, from, to,
                        (nint*)originAddress, (float*)weightAddress);
                }
                else if (wide)
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
            else if (Paired(outW))
            {
                CorrelatePaired(x, y, outH, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else if (InRowBlocks(outH, outW, to - from) && wide)
            {
                CorrelateRowBlocks<Simd512, Vector512<float>>(x, y, outH, outW, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else if (InRowBlocks(outH, outW, to - from))
            {
                CorrelateRowBlocks<Simd256, Vector256<float>>(x, y, outH, outW, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else if (wide)
            {
                CorrelatePlane<Simd512, Vector512<float>>(x, y, outH, outW, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else
            {
                CorrelatePlane<Simd256, Vector256<float>>(x, y, outH, outW, from, to, (nint*)originAddress, (float*)weightAddress);
            }

            epilogue?.Apply(y, plane, outH * outW);
        });
    }

    /// <summary>
    /// gradient[9g + 3u + v] = Σ over b, i &lt; outH, j &lt; outW of upstream[b, q(g), i, j] · x(g)[i + u - 1, j + v - 1], with
    /// x(g) as in <see cref="Correlate"/> (with <paramref name="phaseStep"/> above 0: its stride-2 phase planes, padded).
    /// </summary>
    /// <remarks>
    /// Tasks are chunks of batch items (<see cref="ItemsPerChunk"/>), each summing every group over its items, so that a
    /// chunk's input and output-gradient planes stay in the core's cache while all groups read them (by output plane,
    /// each group streamed the whole batch from memory: 1.7x slower in a training step). The chunks' sums are added in
    /// chunk order, so the result does not depend on which thread ran which chunk. With <paramref name="byInput"/> (groups
    /// in the order of the input they read, and each group's plane: <see cref="TermTable.ByInput"/>) a chunk reads each
    /// input plane once, while all its readers use it, and only its output-gradient planes need to stay in cache. With
    /// <paramref name="chunkUpstream"/>, each task takes its items' output gradient from it instead of from
    /// <paramref name="upstream"/> (which is then not read) and hands it back after its sums.
    /// </remarks>
    public static void WeightGradient(float* input, long inBatch, nint inRow, float* upstream, int batch, int planes, int outH, int outW,
        int* start, nint* origin, float* gradient, int threads, nint phaseStep = 0, (int[] Groups, int[] Planes)? byInput = null,
        IChunkUpstream? chunkUpstream = null)
    {
        var (inputAddress, upstreamAddress, startAddress, originAddress) = ((nint)input, (nint)upstream, (nint)start, (nint)origin);
        int pixels = outH * outW;
        int leastItems = phaseStep > 0 || SideBySide(outH, outW) ? 8 : (2048 + pixels - 1) / pixels;
        // At least two chunks, whatever the thread count, so that the sums' order (and so their bits) does not depend on it.
        int chunk = Math.Min(ItemsPerChunk((byInput is null ? inBatch : 0) + (long)planes * pixels, leastItems), (batch + 1) / 2);
        int values = 9 * start[planes], chunks = (batch + chunk - 1) / chunk;
        ChunkSums.Run(chunks, values, threads, (task, chunkSums) =>
        {
            int b0 = (int)task * chunk, count = Math.Min(chunk, batch - b0);
            float* dy = chunkUpstream is null ? (float*)upstreamAddress + b0 * (long)planes * pixels : chunkUpstream.Take(b0, count);
            try
            {
                var chunkOf = new GradientChunk((float*)inputAddress + b0 * inBatch, inBatch, inRow, phaseStep, dy, (long)planes * pixels, count,
                    outH, outW, (nint*)originAddress);
                if (byInput is var (groups, planeOf))
                {
                    foreach (int g in groups)
                    {
                        chunkOf.Run(planeOf[g], g, g + 1, chunkSums);
                    }
                }
                else
                {
                    for (int q = 0; q < planes; q++)
                    {
                        chunkOf.Run(q, ((int*)startAddress)[q], ((int*)startAddress)[q + 1], chunkSums);
                    }
                }
            }
            finally
            {
                chunkUpstream?.Done(b0, count, dy);
            }
        }, gradient);
    }

    /// <summary>One weight-gradient task's batch items: runs groups of one output plane through the kernel for the plane's shape.</summary>
    private readonly struct GradientChunk(float* x, long inBatch, nint inRow, nint phaseStep, float* upstream, long dyBatch, int count,
        int outH, int outW, nint* origin)
    {
        private readonly bool wide = Simd.Wide(outW);

        /// <summary>Writes the 9 sums of groups [from, to) of plane <paramref name="q"/> to <paramref name="sums"/> at 9g.</summary>
        public void Run(int q, int from, int to, float* sums)
        {
            float* dy = upstream + (long)q * outH * outW;
            if (phaseStep > 0 && wide)
            {
                WeightGradientPhasePlane<Simd512, Vector512<float>>(x, inBatch, inRow, phaseStep, dy, dyBatch, count, outH, outW, from, to,
                    origin, sums);
            }
            else if (phaseStep > 0)
            {
                WeightGradientPhasePlane<Simd256, Vector256<float>>(x, inBatch, inRow, phaseStep, dy, dyBatch, count, outH, outW, from, to,
                    origin, sums);
            }
            else if (SideBySide(outH, outW))
            {
                WeightGradientSideBySide(x, inBatch, dy, dyBatch, count, outH, outW, from, to, origin, sums);
            }
            else if (Paired(outW))
            {
                WeightGradientPaired(x, inBatch, dy, dyBatch, count, outH, from, to, origin, sums);
            }
            else if (wide)
            {
                WeightGradientPlane<Simd512, Vector512<float>>(x, inBatch, dy, dyBatch, count, outH, outW, from, to, origin, sums);
            }
            else
            {
                WeightGradientPlane<Simd256, Vector256<float>>(x, inBatch, dy, dyBatch, count, outH, outW, from, to, origin, sums);
            }
        }
    }

    /// <summary>
    /// Batch items per weight-gradient task: as many as keep a task's planes in cache within 512 KB (half of a core's L2
    /// on the measured machine; the output-gradient planes only when the groups run by input), from 1 (DenseNet-BC's
    /// 96->24 @32, 480 KB an item) to 16, but at least <paramref name="leastItems"/>: enough for 2,048 output pixels on
    /// unit-stride planes 8 or more wide, 8 on smaller and strided ones.
    /// </summary>
    /// <remarks>
    /// A task ends every group's 9 sums with horizontal additions and leaves a partial sum per weight for the final
    /// reduction, so tasks over too few pixels spend much of their time on those. x-resnet-50-4 at 224 px, batch 16
    /// (2026-12-05, the <c>phases</c> benchmark): 256->256 @14 (400 KB an item) took 9.4-9.7 ms for its weight gradient
    /// against a forward pass of 3.7 with 1 item a task, 8.1-8.4 with 6 (1,024 pixels) and 6.3-6.4 with 11 (2,048);
    /// 512->512 @7 (side by side, 2 items by the cache rule) 18-20 ms, with 8 items 8.8-11.2; the stride-2 512->512 to
    /// 7 x 7 23-23.4 ms with 5 items, 17.4-21.6 with 8. A task never takes more than half the batch: one task for
    /// all 16 items left a thread idle (18 ms for 512->512 @7), so there are always at least two.
    /// </remarks>
    private static int ItemsPerChunk(long floatsPerItem, int leastItems) =>
        (int)Math.Clamp(Math.Max(512 * 1024 / (4 * floatsPerItem), leastItems), 1, 16);

    /// <summary>One output plane of a unit-stride layer, swept one group at a time (in whole rows: <see cref="InWholeRows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePlane<TSimd, TVector>(float* input, float* output, int height, int width, int first, int end, nint* origin,
        float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int wholeWidth = WholeWidth(width, TSimd.Lanes);
        if (!InWholeRows(height, width, wholeWidth))
        {
            CorrelateGroups<TSimd, TVector>(input, output, width, height, width, first, end, origin, weight);
            return;
        }

        float* whole = stackalloc float[height * wholeWidth];
        CorrelateGroups<TSimd, TVector>(input, whole, wholeWidth, height, width, first, end, origin, weight);
        CopyRows(whole, wholeWidth, output, height, width);
    }

    /// <summary>
    /// The groups of <see cref="CorrelatePlane{TSimd, TVector}"/> into rows <paramref name="outRow"/> floats apart (padding 1,
    /// read from unpadded input planes): the first group stores, the others add, each strip with the reader for its place
    /// in the row and the writer for its width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateGroups<TSimd, TVector>(float* input, float* output, nint outRow, int height, int width, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        for (int g = first; g < end; g++)
        {
            bool add = g > first;
            float* w = weight + 9 * g;
            for (int j0 = 0; j0 < width; j0 += lanes)
            {
                float* x = input + origin[g] + j0, y = output + j0;
                int valid = width - j0;
                var work = new CorrelateWork<TSimd, TVector>(add, x, y, outRow, height, width, w, valid < lanes ? TSimd.MaskOf(valid) : TSimd.Zero);
                StripKinds.Run(j0, valid, lanes, ref work);
            }
        }
    }

    /// <summary>One strip of a unit-stride group, for <see cref="StripKinds.Run"/>.</summary>
    private readonly struct CorrelateWork<TSimd, TVector>(bool add, float* x, float* y, nint outRow, int height, int width, float* w,
        TVector mask)
        : IStripWork
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        public void Run<TReader>(bool partial)
            where TReader : struct, IStripReader =>
            CorrelateStrip<TSimd, TVector, TReader>(add, partial && !WholeVectors(outRow, TSimd.Lanes), x, y, outRow, height, width, w, mask);
    }

    private static void CorrelateStrip<TSimd, TVector, TReader>(bool add, bool partial, float* x, float* y, nint outRow, int height, int width,
        float* w, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TReader : struct, IStripReader
    {
        if (partial)
        {
            if (add)
            {
                CorrelateRows<TSimd, TVector, TReader, AddMaskedRow>(x, y, outRow, height, width, w, mask);
            }
            else
            {
                CorrelateRows<TSimd, TVector, TReader, StoreMaskedRow>(x, y, outRow, height, width, w, mask);
            }
        }
        else if (add)
        {
            CorrelateRows<TSimd, TVector, TReader, AddRow>(x, y, outRow, height, width, w, mask);
        }
        else
        {
            CorrelateRows<TSimd, TVector, TReader, StoreRow>(x, y, outRow, height, width, w, mask);
        }
    }

    /// <summary>
    /// One vector-wide strip of one group, the top and bottom halves of the plane side by side: two independent windows
    /// give the core six multiply-add chains to overlap instead of three. Rows above and below the plane are zero
    /// padding, so they are never read: the top half starts one input row later than a padded plane would, and the
    /// bottom half's last output row is complete without the row below the plane. The main loop has no branch but its own.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateRows<TSimd, TVector, TReader, TWriter>(float* x, float* y, nint outRow, int height, int width, float* w,
        TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TReader : struct, IStripReader
        where TWriter : struct, IRowWriter
    {
        TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
        TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
        TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
        int half = (height + 1) / 2, lowRows = height - half;
        nint row = width;
        float* yLow = y + half * outRow;
        // Output rows i - 1 (two kernel rows done) and i (one done) in flight while input row i + 1 is read, in each half.
        TVector older = TSimd.Zero, old = TSimd.Zero, olderLow = TSimd.Zero, oldLow = TSimd.Zero;
        float* xLow = x + (half - 1) * row;
        if (lowRows > 0)
        {
            WindowRow<TSimd, TVector, TReader>(xLow, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, ref olderLow, ref oldLow);
            xLow += row;
            WindowRow<TSimd, TVector, TReader>(xLow, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, ref olderLow, ref oldLow);
            xLow += row;
        }

        WindowRow<TSimd, TVector, TReader>(x, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, ref older, ref old);
        x += row;
        for (int i = 0; i < lowRows - 1; i++, x += row, xLow += row)
        {
            var done = WindowRow<TSimd, TVector, TReader>(x, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, ref older, ref old);
            var doneLow = WindowRow<TSimd, TVector, TReader>(xLow, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, ref olderLow, ref oldLow);
            TWriter.Write<TSimd, TVector>(y + i * outRow, done, mask);
            TWriter.Write<TSimd, TVector>(yLow + i * outRow, doneLow, mask);
        }

        // The last row of each half: the bottom half's needs only the zero row below the plane; the top half's reads row
        // `half` (for a plane of odd height, the top half has this one row more).
        for (int i = Math.Max(lowRows - 1, 0); i < half; i++, x += row)
        {
            var done = i + 1 < height
                ? WindowRow<TSimd, TVector, TReader>(x, mask, w00, w01, w02, w10, w11, w12, w20, w21, w22, ref older, ref old)
                : older;
            TWriter.Write<TSimd, TVector>(y + i * outRow, done, mask);
            if (i < lowRows)
            {
                TWriter.Write<TSimd, TVector>(yLow + i * outRow, olderLow, mask);
            }
        }
    }

    /// <summary>
    /// Reads one input row segment into the window: it completes the oldest output row (returned), adds the middle
    /// kernel row to the next, and starts a fresh one; then the window moves on by a row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector WindowRow<TSimd, TVector, TReader>(float* x, TVector mask, TVector w00, TVector w01, TVector w02, TVector w10,
        TVector w11, TVector w12, TVector w20, TVector w21, TVector w22, ref TVector older, ref TVector old)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TReader : struct, IStripReader
    {
        TReader.Read<TSimd, TVector>(x, mask, out var x0, out var x1, out var x2);
        var fresh = TSimd.MultiplyAdd(w02, x2, TSimd.MultiplyAdd(w01, x1, TSimd.MultiplyAdd(w00, x0, TSimd.Zero)));
        var middle = TSimd.MultiplyAdd(w12, x2, TSimd.MultiplyAdd(w11, x1, TSimd.MultiplyAdd(w10, x0, old)));
        var done = TSimd.MultiplyAdd(w22, x2, TSimd.MultiplyAdd(w21, x1, TSimd.MultiplyAdd(w20, x0, older)));
        (older, old) = (middle, fresh);
        return done;
    }

    /// <summary>The 9 gradients of each group of one output plane of a unit-stride layer (unpadded planes), summed over the batch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientPlane<TSimd, TVector>(float* input, long inBatch, float* upstream, long upstreamBatch,
        int batch, int height, int width, int first, int end, nint* origin, float* gradient)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        for (int g = first; g < end; g++)
        {
            var sums = default(Taps<TVector>);
            for (int j0 = 0; j0 < width; j0 += lanes)
            {
                int valid = width - j0;
                var work = new GradientWork<TSimd, TVector>(input + origin[g] + j0, inBatch, upstream + j0, upstreamBatch, batch, height, width,
                    valid < lanes ? TSimd.MaskOf(valid) : TSimd.Zero, ref sums);
                StripKinds.Run(j0, valid, lanes, ref work);
            }

            StoreTapSums<TSimd, TVector>(gradient + 9 * g, sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7], sums[8]);
        }
    }

    /// <summary>
    /// One strip over a run of batch items, added to <paramref name="sums"/>: input row r meets output rows r + 1 (kernel
    /// row 0), r (row 1) and r - 1 (row 2); output rows outside the plane, like the zero padding rows, add nothing and are
    /// skipped. The 9 accumulators run on across the items (3-10 % faster than a call per item in the phases benchmark).
    /// </summary>
    /// <remarks>Not inlined, so that its 9 accumulators live in registers (the caller's sums are in memory).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void GradientRows<TSimd, TVector, TReader, TRows>(float* input, long inBatch, float* upstream, long upstreamBatch, int batch,
        int height, int width, TVector mask, ref Taps<TVector> sums)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TReader : struct, IStripReader
        where TRows : struct, IRowReader
    {
        TVector a00 = TSimd.Zero, a01 = TSimd.Zero, a02 = TSimd.Zero, a10 = TSimd.Zero, a11 = TSimd.Zero, a12 = TSimd.Zero;
        TVector a20 = TSimd.Zero, a21 = TSimd.Zero, a22 = TSimd.Zero;
        nint row = width;
        // A plane up to 8 wide is a few cache lines an item, the next item's a whole batch stride away (a page or more),
        // where the hardware prefetcher does not look: most of the time went on waiting for the input row's load, so each row
        // asks for the same rows of the next item (past the last item, a prefetch never faults). x-resnet-20-4's 64->64 @7
        // weight gradient: 2.4-3.0 -> 2.0-2.5 ms (AVX2, 2026-12-07, the two forms in turns); on the 14- and 28-wide planes
        // it made no difference or cost a little.
        bool narrow = Sse.IsSupported && width <= Vector256<float>.Count;
        for (int b = 0; b < batch; b++)
        {
            float* x = input + b * inBatch, dy = upstream + b * upstreamBatch;
            TVector below = TRows.Read<TSimd, TVector>(dy, mask), current = TSimd.Zero, above;
            for (int r = 0; r < height; r++, x += row)
            {
                (above, current) = (current, below);
                below = r + 1 < height ? TRows.Read<TSimd, TVector>(dy + (r + 1) * row, mask) : TSimd.Zero;
                if (narrow)
                {
                    Sse.Prefetch0(x + inBatch);
                    Sse.Prefetch0(dy + r * row + upstreamBatch);
                }

                TReader.Read<TSimd, TVector>(x, mask, out var x0, out var x1, out var x2);
                a00 = TSimd.MultiplyAdd(below, x0, a00);
                a01 = TSimd.MultiplyAdd(below, x1, a01);
                a02 = TSimd.MultiplyAdd(below, x2, a02);
                a10 = TSimd.MultiplyAdd(current, x0, a10);
                a11 = TSimd.MultiplyAdd(current, x1, a11);
                a12 = TSimd.MultiplyAdd(current, x2, a12);
                a20 = TSimd.MultiplyAdd(above, x0, a20);
                a21 = TSimd.MultiplyAdd(above, x1, a21);
                a22 = TSimd.MultiplyAdd(above, x2, a22);
            }
        }

        (sums[0], sums[1], sums[2]) = (TSimd.Add(sums[0], a00), TSimd.Add(sums[1], a01), TSimd.Add(sums[2], a02));
        (sums[3], sums[4], sums[5]) = (TSimd.Add(sums[3], a10), TSimd.Add(sums[4], a11), TSimd.Add(sums[5], a12));
        (sums[6], sums[7], sums[8]) = (TSimd.Add(sums[6], a20), TSimd.Add(sums[7], a21), TSimd.Add(sums[8], a22));
    }

    /// <summary>One strip of a unit-stride group's weight gradient over a run of batch items, for <see cref="StripKinds.Run"/>.</summary>
    private readonly struct GradientWork<TSimd, TVector> : IStripWork
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        private readonly float* x;
        private readonly long inBatch;
        private readonly float* dy;
        private readonly long upstreamBatch;
        private readonly int batch;
        private readonly int height;
        private readonly int width;
        private readonly TVector mask;
        // The caller's stack-local sums, by address: a ref field would make this a ref struct, which a generic argument can
        // be only on .NET 9 and later (`allows ref struct`); the library also targets .NET 8.
        private readonly void* sums;

        public GradientWork(float* x, long inBatch, float* dy, long upstreamBatch, int batch, int height, int width, TVector mask,
            ref Taps<TVector> sums)
        {
            this.x = x;
            this.dy = dy;
            (this.inBatch, this.upstreamBatch, this.batch) = (inBatch, upstreamBatch, batch);
            (this.height, this.width, this.mask) = (height, width, mask);
            this.sums = Unsafe.AsPointer(ref sums);
        }

        public void Run<TReader>(bool partial)
            where TReader : struct, IStripReader
        {
            if (partial)
            {
                GradientRows<TSimd, TVector, TReader, MaskedRows>(x, inBatch, dy, upstreamBatch, batch, height, width, mask, ref Unsafe.AsRef<Taps<TVector>>(sums));
            }
            else
            {
                GradientRows<TSimd, TVector, TReader, WholeRows>(x, inBatch, dy, upstreamBatch, batch, height, width, mask, ref Unsafe.AsRef<Taps<TVector>>(sums));
            }
        }
    }

    /// <summary>A group's 9 tap gradients, each accumulator's lanes summed, stored at into[0] .. into[8].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTapSums<TSimd, TVector>(float* into, TVector a00, TVector a01, TVector a02, TVector a10, TVector a11, TVector a12,
        TVector a20, TVector a21, TVector a22)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        TSimd.Sums(a00, a01, a02, a10, a11, a12, a20, a21).Store(into);
        into[8] = TSimd.Sum(a22);
    }

    /// <summary>The 9 per-lane gradient sums of one group.</summary>
    [InlineArray(9)]
    private struct Taps<TVector>
    {
        private TVector first;
    }

    /// <summary>One output plane of a stride-2 layer, swept one group at a time (in whole rows: <see cref="InWholeRows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePhasePlane<TSimd, TVector>(float* input, nint inRow, nint phaseStep, float* output, int outH, int outW,
        int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int wholeWidth = WholeWidth(outW, TSimd.Lanes);
        if (!InWholeRows(outH, outW, wholeWidth))
        {
            CorrelatePhaseGroups<TSimd, TVector>(input, inRow, phaseStep, output, outW, outH, outW, first, end, origin, weight);
            return;
        }

        float* whole = stackalloc float[outH * wholeWidth];
        CorrelatePhaseGroups<TSimd, TVector>(input, inRow, phaseStep, whole, wholeWidth, outH, outW, first, end, origin, weight);
        CopyRows(whole, wholeWidth, output, outH, outW);
    }

    /// <summary>
    /// The groups of <see cref="CorrelatePhasePlane{TSimd, TVector}"/> into rows <paramref name="outRow"/> floats apart: the
    /// first group stores, the others add, each strip by the writer for its width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePhaseGroups<TSimd, TVector>(float* input, nint inRow, nint phaseStep, float* output, nint outRow, int outH,
        int outW, int first, int end, nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes;
        for (int g = first; g < end; g++)
        {
            bool add = g > first;
            for (int j0 = 0; j0 < outW; j0 += lanes)
            {
                float* x = input + origin[g] + j0, y = output + j0, w = weight + 9 * g;
                int valid = outW - j0;
                if (valid >= lanes || WholeVectors(outRow, lanes))
                {
                    if (add)
                    {
                        PhaseStrip<TSimd, TVector, AddRow>(x, inRow, phaseStep, y, outRow, outH, w, TSimd.Zero);
                    }
                    else
                    {
                        PhaseStrip<TSimd, TVector, StoreRow>(x, inRow, phaseStep, y, outRow, outH, w, TSimd.Zero);
                    }
                }
                else if (add)
                {
                    PhaseStrip<TSimd, TVector, AddMaskedRow>(x, inRow, phaseStep, y, outRow, outH, w, TSimd.MaskOf(valid));
                }
                else
                {
                    PhaseStrip<TSimd, TVector, StoreMaskedRow>(x, inRow, phaseStep, y, outRow, outH, w, TSimd.MaskOf(valid));
                }
            }
        }
    }

    /// <summary>
    /// One strip of one stride-2 group: each input phase row r serves output row r (kernel rows 0 and 1) and output row
    /// r - 1 (kernel row 2), so 6 loads feed 9 multiply-adds. The phase planes are padded, so every load is whole.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PhaseStrip<TSimd, TVector, TWriter>(float* p00, nint inRow, nint phaseStep, float* y, nint outRow, int outH, float* w,
        TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TWriter : struct, IRowWriter
    {
        TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
        TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
        TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
        // Phase row 0 only starts output row 0.
        var old = PhaseRowStart<TSimd, TVector>(p00, phaseStep, w00, w01, w02, w10, w11, w12);
        p00 += inRow;
        for (int r = 1; r <= outH; r++, p00 += inRow)
        {
            TVector a0 = TSimd.Load(p00), a1 = TSimd.Load(p00 + 1), b0 = TSimd.Load(p00 + phaseStep);
            var done = TSimd.MultiplyAdd(w21, b0, TSimd.MultiplyAdd(w22, a1, TSimd.MultiplyAdd(w20, a0, old)));
            TWriter.Write<TSimd, TVector>(y + (r - 1) * outRow, done, mask);
            old = PhaseRowStart<TSimd, TVector>(p00, phaseStep, w00, w01, w02, w10, w11, w12);
        }
    }

    /// <summary>Kernel rows 0 (phase row (0, ·)) and 1 (phase row (1, ·)) of the output row that phase row r starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector PhaseRowStart<TSimd, TVector>(float* p00, nint phaseStep, TVector w00, TVector w01, TVector w02, TVector w10,
        TVector w11, TVector w12)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        float* p01 = p00 + phaseStep, p10 = p01 + phaseStep, p11 = p10 + phaseStep;
        TVector a0 = TSimd.Load(p00), a1 = TSimd.Load(p00 + 1), b0 = TSimd.Load(p01);
        TVector c0 = TSimd.Load(p10), c1 = TSimd.Load(p10 + 1), d0 = TSimd.Load(p11);
        var upper = TSimd.MultiplyAdd(w01, b0, TSimd.MultiplyAdd(w02, a1, TSimd.MultiplyAdd(w00, a0, TSimd.Zero)));
        var middle = TSimd.MultiplyAdd(w11, d0, TSimd.MultiplyAdd(w12, c1, TSimd.MultiplyAdd(w10, c0, TSimd.Zero)));
        return TSimd.Add(upper, middle);
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
            var sums = default(Taps<TVector>);
            for (int j0 = 0; j0 < outW; j0 += lanes)
            {
                float* x = input + origin[g] + j0, dy = upstream + j0;
                int valid = outW - j0;
                if (valid >= lanes)
                {
                    PhaseGradientRows<TSimd, TVector, WholeRows>(x, inBatch, inRow, phaseStep, dy, upstreamBatch, batch, outH, outW, TSimd.Zero,
                        ref sums);
                }
                else
                {
                    PhaseGradientRows<TSimd, TVector, MaskedRows>(x, inBatch, inRow, phaseStep, dy, upstreamBatch, batch, outH, outW,
                        TSimd.MaskOf(valid), ref sums);
                }
            }

            StoreTapSums<TSimd, TVector>(gradient + 9 * g, sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7], sums[8]);
        }
    }

    /// <summary>
    /// One strip over a run of batch items, added to <paramref name="sums"/>: phase row r meets output row r (kernel rows
    /// 0, 1) and output row r - 1 (kernel row 2). Lanes past the plane's width read a zero output gradient, so they add
    /// nothing. The 9 accumulators run on across the items, as in <see cref="GradientRows"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void PhaseGradientRows<TSimd, TVector, TRows>(float* input, long inBatch, nint inRow, nint phaseStep, float* upstream,
        long upstreamBatch, int batch, int outH, int outW, TVector mask, ref Taps<TVector> sums)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TRows : struct, IRowReader
    {
        TVector a00 = TSimd.Zero, a01 = TSimd.Zero, a02 = TSimd.Zero, a10 = TSimd.Zero, a11 = TSimd.Zero, a12 = TSimd.Zero;
        TVector a20 = TSimd.Zero, a21 = TSimd.Zero, a22 = TSimd.Zero;
        TVector x00, x01, x02;
        for (int b = 0; b < batch; b++)
        {
            float* p00 = input + b * inBatch, dy = upstream + b * upstreamBatch;
            TVector d1 = TSimd.Zero;
            for (int r = 0; r < outH; r++, p00 += inRow)
            {
                var d0 = TRows.Read<TSimd, TVector>(dy + (nint)r * outW, mask);
                float* p01 = p00 + phaseStep, p10 = p01 + phaseStep, p11 = p10 + phaseStep;
                (x00, x02, x01) = (TSimd.Load(p00), TSimd.Load(p00 + 1), TSimd.Load(p01));
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

            // Phase row outH meets only output row outH - 1, through kernel row 2.
            (x00, x02, x01) = (TSimd.Load(p00), TSimd.Load(p00 + 1), TSimd.Load(p00 + phaseStep));
            a20 = TSimd.MultiplyAdd(d1, x00, a20);
            a21 = TSimd.MultiplyAdd(d1, x01, a21);
            a22 = TSimd.MultiplyAdd(d1, x02, a22);
        }

        (sums[0], sums[1], sums[2]) = (TSimd.Add(sums[0], a00), TSimd.Add(sums[1], a01), TSimd.Add(sums[2], a02));
        (sums[3], sums[4], sums[5]) = (TSimd.Add(sums[3], a10), TSimd.Add(sums[4], a11), TSimd.Add(sums[5], a12));
        (sums[6], sums[7], sums[8]) = (TSimd.Add(sums[6], a20), TSimd.Add(sums[7], a21), TSimd.Add(sums[8], a22));
    }

    /// <summary>
    /// The input gradient of a stride-2, padding-1 layer, written in the input's own layout: input pixel (2m + a, 2n + b)
    /// of channel c takes, from each group (an output plane that reads c, with its 9 weights), the taps (u, v) with
    /// u ≡ a + 1 and v ≡ b + 1 (mod 2). Each group sweeps its unpadded output-gradient plane once: row r, with its
    /// neighbour one column on, feeds input rows 2r and 2r - 1, whose even and odd columns are interleaved in registers.
    /// </summary>
    /// <remarks>
    /// <paramref name="origin"/> points at each group's output-gradient plane (rows x cols, row stride cols); the output is
    /// (batch, channels, height, width) with rows = ceil(height / 2) and cols = ceil(width / 2).
    /// </remarks>
    public static void InputGradientStride2(float* upstream, long upBatch, float* output, int batch, int channels, int height, int width,
        int* start, nint* origin, float* weight, int threads)
    {
        var (upstreamAddress, outputAddress, originAddress, weightAddress) = ((nint)upstream, (nint)output, (nint)origin, (nint)weight);
        int cols = (width + 1) / 2;
        bool wide = Simd.Wide(cols);
        KernelThreads.ForEachPlane(batch, channels, start, threads, (b, _, task, from, to) =>
        {
            float* dy = (float*)upstreamAddress + b * upBatch, y = (float*)outputAddress + task * height * width;
            if (from == to)
            {
                new Span<float>(y, height * width).Clear();
            }
            else if (wide && TransposedInRowBlocks(height, width, Simd512.Lanes, to - from))
            {
                TransposedRowBlocks<Simd512, Vector512<float>>(dy, y, height, width, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else if (!wide && TransposedInRowBlocks(height, width, Simd256.Lanes, to - from))
            {
                TransposedRowBlocks<Simd256, Vector256<float>>(dy, y, height, width, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else if (wide)
            {
                TransposedPlane<Simd512, Vector512<float>>(dy, y, height, width, from, to, (nint*)originAddress, (float*)weightAddress);
            }
            else
            {
                TransposedPlane<Simd256, Vector256<float>>(dy, y, height, width, from, to, (nint*)originAddress, (float*)weightAddress);
            }
        });
    }

    /// <summary>The most floats of a plane that the sweeps sum in a stack buffer (<see cref="InWholeRows"/>): 32 KB.</summary>
    private const int WholeRowsFloats = 8192;

    /// <summary>
    /// Whether a plane swept one group at a time is summed in a stack buffer of rows <paramref name="wholeWidth"/> wide and
    /// copied out once: on AVX2, where its rows end in a partial vector and it fits <see cref="WholeRowsFloats"/>. There a
    /// partial row is stored as 4-, 2- and 1-lane stores, and the next group's whole-vector load of it waits for them to
    /// leave the store buffer (the 512->512 3x3/2 @14 input gradient of x-resnet-50-4 at batch 16: 58 -> 34 ms).
    /// </summary>
    private static bool InWholeRows(int rows, int width, int wholeWidth) =>
        !Simd.Allow512 && wholeWidth != width && rows * wholeWidth <= WholeRowsFloats;

    /// <summary><paramref name="width"/> rounded up to whole vectors of <paramref name="lanes"/>.</summary>
    private static int WholeWidth(int width, int lanes) => (width + lanes - 1) / lanes * lanes;

    /// <summary>
    /// Whether rows <paramref name="row"/> floats apart hold whole vectors of <paramref name="lanes"/>, so that a row's last
    /// strip may be written whole (its lanes past the plane's width fall in the row's own padding, or there are none).
    /// </summary>
    private static bool WholeVectors(nint row, int lanes) => row % lanes == 0;

    /// <summary>Copies <paramref name="rows"/> rows of <paramref name="width"/> from rows <paramref name="wholeWidth"/> apart.</summary>
    private static void CopyRows(float* whole, int wholeWidth, float* output, int rows, int width)
    {
        for (int r = 0; r < rows; r++)
        {
            new ReadOnlySpan<float>(whole + r * wholeWidth, width).CopyTo(new Span<float>(output + r * width, width));
        }
    }

    /// <summary>One input channel's gradient, its groups summed a strip at a time (in whole rows: <see cref="InWholeRows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedPlane<TSimd, TVector>(float* upstream, float* output, int height, int width, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int wholeWidth = 2 * WholeWidth((width + 1) / 2, TSimd.Lanes); // even and odd columns, a vector of each
        if (!InWholeRows(height, width, wholeWidth))
        {
            TransposedGroups<TSimd, TVector>(upstream, output, width, height, width, first, end, origin, weight);
            return;
        }

        float* whole = stackalloc float[height * wholeWidth];
        TransposedGroups<TSimd, TVector>(upstream, whole, wholeWidth, height, width, first, end, origin, weight);
        CopyRows(whole, wholeWidth, output, height, width);
    }

    /// <summary>
    /// The groups of <see cref="TransposedPlane{TSimd, TVector}"/> into rows <paramref name="row"/> floats apart: the
    /// first group stores, the others add; into rows of whole vector pairs the last strip writes whole vectors too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedGroups<TSimd, TVector>(float* upstream, float* output, nint row, int height, int width, int first, int end,
        nint* origin, float* weight)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes, cols = (width + 1) / 2;
        bool wholeRows = WholeVectors(row, 2 * lanes);
        for (int g = first; g < end; g++)
        {
            bool add = g > first;
            for (int j0 = 0; j0 < cols; j0 += lanes)
            {
                float* dy = upstream + origin[g] + j0, y = output + 2 * j0, w = weight + 9 * g;
                if (j0 + lanes < cols)
                {
                    if (add)
                    {
                        TransposedStrip<TSimd, TVector, InnerPairs, AddRow>(dy, y, row, height, width, w, TSimd.Zero, TSimd.Zero, TSimd.Zero);
                    }
                    else
                    {
                        TransposedStrip<TSimd, TVector, InnerPairs, StoreRow>(dy, y, row, height, width, w, TSimd.Zero, TSimd.Zero, TSimd.Zero);
                    }

                    continue;
                }

                // The last strip: its output-gradient lanes, and the input columns of its two interleaved halves, masked.
                int pixels = width - 2 * j0;
                var (valid, low, high) = (TSimd.MaskOf(cols - j0), TSimd.MaskOf(Math.Min(pixels, lanes)), TSimd.MaskOf(Math.Max(pixels - lanes, 0)));
                switch (add, wholeRows)
                {
                    case (true, true):
                        TransposedStrip<TSimd, TVector, LastPairs, AddRow>(dy, y, row, height, width, w, valid, low, high);
                        break;
                    case (false, true):
                        TransposedStrip<TSimd, TVector, LastPairs, StoreRow>(dy, y, row, height, width, w, valid, low, high);
                        break;
                    case (true, false):
                        TransposedStrip<TSimd, TVector, LastPairs, AddMaskedRow>(dy, y, row, height, width, w, valid, low, high);
                        break;
                    default:
                        TransposedStrip<TSimd, TVector, LastPairs, StoreMaskedRow>(dy, y, row, height, width, w, valid, low, high);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// One strip of one group: output-gradient row r (d, and d⁺ one column on) gives input row 2r its even columns
    /// w11·d and odd columns w12·d + w10·d⁺, and input row 2r - 1, with what row r - 1 left (w21·d and w22·d + w20·d⁺),
    /// its even columns w01·d and odd columns w02·d + w00·d⁺. The row below the plane is zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedStrip<TSimd, TVector, TReader, TWriter>(float* dy, float* y, nint row, int height, int width, float* w,
        TVector valid, TVector low, TVector high)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
        where TReader : struct, IPairReader
        where TWriter : struct, IRowWriter
    {
        TVector w00 = TSimd.Broadcast(w[0]), w01 = TSimd.Broadcast(w[1]), w02 = TSimd.Broadcast(w[2]);
        TVector w10 = TSimd.Broadcast(w[3]), w11 = TSimd.Broadcast(w[4]), w12 = TSimd.Broadcast(w[5]);
        TVector w20 = TSimd.Broadcast(w[6]), w21 = TSimd.Broadcast(w[7]), w22 = TSimd.Broadcast(w[8]);
        int lanes = TSimd.Lanes, rows = (height + 1) / 2, cols = (width + 1) / 2;
        TVector carryEven = TSimd.Zero, carryOdd = TSimd.Zero;
        for (int r = 0; r < rows; r++, dy += cols)
        {
            TReader.Read<TSimd, TVector>(dy, valid, out var d, out var next);
            if (r >= 1)
            {
                var even = TSimd.MultiplyAdd(w01, d, carryEven);
                var odd = TSimd.MultiplyAdd(w02, d, TSimd.MultiplyAdd(w00, next, carryOdd));
                float* above = y + (2 * r - 1) * row;
                TWriter.Write<TSimd, TVector>(above, TSimd.InterleaveLow(even, odd), low);
                TWriter.Write<TSimd, TVector>(above + lanes, TSimd.InterleaveHigh(even, odd), high);
            }

            {
                var even = TSimd.MultiplyAdd(w11, d, TSimd.Zero);
                var odd = TSimd.MultiplyAdd(w12, d, TSimd.MultiplyAdd(w10, next, TSimd.Zero));
                float* at = y + 2 * r * row;
                TWriter.Write<TSimd, TVector>(at, TSimd.InterleaveLow(even, odd), low);
                TWriter.Write<TSimd, TVector>(at + lanes, TSimd.InterleaveHigh(even, odd), high);
            }

            carryEven = TSimd.MultiplyAdd(w21, d, TSimd.Zero);
            carryOdd = TSimd.MultiplyAdd(w22, d, TSimd.MultiplyAdd(w20, next, TSimd.Zero));
        }

        if (2 * rows - 1 < height)
        {
            float* last = y + (2 * rows - 1) * row;
            TWriter.Write<TSimd, TVector>(last, TSimd.InterleaveLow(carryEven, carryOdd), low);
            TWriter.Write<TSimd, TVector>(last + lanes, TSimd.InterleaveHigh(carryEven, carryOdd), high);
        }
    }
}
