using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The three passes of a 1x1 convolution with stride 1 and no padding over flat planes: each output plane is the weighted
/// sum of whole input planes, so a plane is one run of H·W floats, read in place, in full vectors with a masked tail.
/// </summary>
/// <remarks>
/// <see cref="SparseCorrelation"/>'s tiles follow the plane's rows (a 7-wide row in an 8-lane vector, 14 of 16 lanes on
/// 14-wide ones) and read a copy of the input with slack rows. A flat run uses every lane but the last vector's tail,
/// 16-lane vectors on every plane size, and no copy. A tile runs in pieces of 8 vectors while 8 remain, then 4, then a
/// masked piece of up to 4 vectors or of 1; a piece's unused lanes load nothing (masked) and are not stored.
/// </remarks>
internal static unsafe class Pointwise
{
    /// <summary>
    /// output[b, q, p] = Σ over terms t of q: weight[t] · input[b · inBatch + offset[t] + p], for p &lt; <paramref name="plane"/>,
    /// with the terms in source blocks (<see cref="TermTable.InSourceBlocks"/>, <see cref="Blocking"/>): plane q's terms in
    /// block k are [start[k · planes + q], start[k · planes + q + 1]) (none in any block: zeros), and
    /// <paramref name="epilogue"/> is applied to each plane.
    /// </summary>
    /// <remarks>
    /// Each task, one item's pixel tile, runs every output plane's terms of one source block before the next block, adding
    /// to the output tile in place: a block's source rows (<see cref="BlockBytes"/>) stay in the core's cache while all
    /// their readers use them, and each output tile is read and written once a block. Plane by plane over all its terms,
    /// each term read its source row from wherever the item's whole input was, one load per multiply-add: x-resnet-50-4's
    /// 1x1 layers ran at 22-37 % of the multiply-add peak (2026-12-06).
    /// </remarks>
    public static void Correlate(float* input, long inBatch, float* output, int batch, int planes, int plane, int blocks, int* start,
        nint* offset, float* weight, int threads, PlaneEpilogue? epilogue = null)
    {
        int tile = Blocking(plane).Tile, tiles = (plane + tile - 1) / tile;
        // One item's few tiles (scoring one image) split their output planes too, so that every thread has work.
        int chunks = Math.Clamp(4 * threads / (batch * tiles), 1, Math.Max(1, planes / 8));
        var (inputAddress, outputAddress, startAddress, offsetAddress, weightAddress) =
            ((nint)input, (nint)output, (nint)start, (nint)offset, (nint)weight);
        bool wide = Simd.Allow512;
        KernelThreads.ForEach((long)batch * tiles * chunks, threads, task =>
        {
            long b = task / chunks / tiles;
            int chunk = (int)(task % chunks), p0 = (int)(task / chunks % tiles) * tile, length = Math.Min(tile, plane - p0);
            int q0 = chunk * planes / chunks, q1 = (chunk + 1) * planes / chunks;
            float* x = (float*)inputAddress + b * inBatch + p0, y = (float*)outputAddress + b * planes * plane + p0;
            int* runs = (int*)startAddress;
            for (int k = 0; k < blocks; k++, runs += planes)
            {
                if (wide)
                {
                    Planes<Simd512, Vector512<float>>(x, y, plane, length, q0, q1, runs, (nint*)offsetAddress, (float*)weightAddress, k > 0);
                }
                else
                {
                    Planes<Simd256, Vector256<float>>(x, y, plane, length, q0, q1, runs, (nint*)offsetAddress, (float*)weightAddress, k > 0);
                }
            }

            for (int q = q0; epilogue is not null && q < q1; q++)
            {
                epilogue.Apply(y + (long)q * plane, q, length);
            }
        });
    }

    /// <summary>
    /// The bytes of one tile's source rows in a block of <see cref="Correlate"/> where the tile is the whole plane, which
    /// stay in the core's second-level cache while every output plane's terms in the block read them.
    /// </summary>
    /// <remarks>
    /// Blocks that fit the first-level cache (16 KB) held few terms of each output plane on small planes (about 5 a
    /// plane for x-resnet-50-4's 1024->256 @14), so reading and writing each output tile once a block was much of the
    /// work. With 64 KB the forward passes and input gradients of its 14 x 14 and 7 x 7 layers took 30-45 % less time,
    /// those at 28 x 28 10-25 % less, 56 x 56 about the same, and 128 KB no less than 64 (AVX2, 2026-12-07, the
    /// <c>phases</c> benchmark at batch 16). The sums run in the same order whatever the block, so the bits do not change.
    /// </remarks>
    private const int BlockBytes = 64 * 1024;

    /// <summary>
    /// The bytes of one tile's source rows in a block where the tile is a 128-pixel part of a larger plane: a piece of 8
    /// 8-lane vectors over 128 source planes would fill a 32 KB first-level cache, over 64 half of it.
    /// </summary>
    /// <remarks>
    /// Against 64 KB, x-resnet-50-4's 28 x 28 layers' forward passes and input gradients took 3-10 % less time and its
    /// 56 x 56 layers' 0-9 % less (AVX2, 2026-12-08, batch 16, two plans in one process alternating, two runs); 16 KB
    /// (about 8 terms of each output plane a block at density 1/4) was no faster than 64 KB, and up to 13 % slower on 28 x 28
    /// planes.
    /// </remarks>
    private const int TiledBlockBytes = 32 * 1024;

    /// <summary>
    /// <see cref="Correlate"/>'s pixel tile over planes of <paramref name="plane"/> floats (the whole plane up to 256, else
    /// 128: 8 vectors) and the source planes per block whose tile rows fit <see cref="BlockBytes"/> (a whole plane) or
    /// <see cref="TiledBlockBytes"/> (at least 8).
    /// </summary>
    public static (int Tile, int PerBlock) Blocking(int plane)
    {
        int tile = plane <= 256 ? plane : 128;
        return (tile, Math.Max(8, (tile < plane ? TiledBlockBytes : BlockBytes) / (4 * tile)));
    }

    /// <summary>
    /// The most bytes of the reused rows (<see cref="WeightGradient"/>) that one tile holds: a pixel range of every reused
    /// plane that all the streamed planes' terms read from the core's second-level cache (512 KB a core on the measured
    /// AVX2 machine, where a budget of 256 KB split the 400 KB planes of x-resnet-50-4's 512->128 @28 and 1024->512 @14
    /// in two, 20-30 % slower).
    /// </summary>
    private const int TileBytes = 512 * 1024;

    /// <summary>
    /// A <see cref="WeightGradient"/> tile over planes of <paramref name="plane"/> floats whose reused rows take
    /// <paramref name="reusedItem"/> floats an item: whole planes of as many items as fit half of <see cref="TileBytes"/>
    /// (at least one) where an item's rows fit it, else one item's pixels in equal ranges within it, whole vectors of 16.
    /// </summary>
    /// <remarks>
    /// Items of 7 x 7 and 14 x 14 planes filling all of <see cref="TileBytes"/> (5 of x-resnet-50-4's 512->2048 @7, 2 of
    /// its 256->1024 @14) were 5-10 % slower than half of it, as the tasks' gradient sums also pass through the cache at
    /// every tile; a plane split to fit half (1024->512 @14 in two tiles) was a third slower than whole.
    /// </remarks>
    private static (int Items, int Pixels) GradientTile(long reusedItem, int plane, int batch)
    {
        long itemBytes = 4 * reusedItem;
        if (itemBytes <= TileBytes)
        {
            return ((int)Math.Clamp(TileBytes / 2 / itemBytes, 1, batch), plane);
        }

        int fits = (int)Math.Max(16, TileBytes / (itemBytes / plane));
        int tiles = (plane + fits - 1) / fits;
        return (1, Math.Min(plane, ((plane + tiles - 1) / tiles + 15) / 16 * 16));
    }

    /// <summary>
    /// gradient[t] = Σ over b, p of streamed[b, q(t), p] · reused[b · reusedItem + offset[t] + p]: the weight gradient of
    /// <see cref="Correlate"/>, its terms by streamed plane q (each run a multiple of 8 long,
    /// <see cref="TermTable.PaddedToEight"/>); either side may be the layer's input, the other its output gradient.
    /// </summary>
    /// <remarks>
    /// The batch runs in tiles (<see cref="GradientTile"/>) of the reused side, each read from memory once by each core and
    /// from its cache by all the streamed planes' terms; each thread owns a range of the streamed planes with an equal
    /// share of the terms and adds every tile's sums to their weights, in tile order, so the result does not depend on
    /// the thread count, and no task leaves partial sums of every weight. The caller makes the side with fewer channels
    /// the reused one. Tasks of pixel tiles, each writing a partial sum of every weight added up afterwards (as the 3 x 3
    /// weight gradients run), with the input always reused, were slower on x-resnet-50-4's 1x1 layers with more inputs
    /// than outputs and on its 7 x 7 and 14 x 14 layers (AVX2, 2026-12-07, batch 16: 512->128 @28 12.9-16.3 -> 8.1-8.2 ms,
    /// 1024->512 @14 20.9-25.6 -> 18.7-18.9, 512->2048 @7 15.5-18.3 -> 13.5-13.8; 64->64 and 64->256 @56 the same).
    /// </remarks>
    public static void WeightGradient(float* reused, long reusedItem, float* streamed, long streamedItem, int batch, int planes,
        int plane, int* start, nint* offset, float* gradient, int threads)
    {
        var (items, tile) = GradientTile(reusedItem, plane, batch);
        int tasks = Math.Min(threads, planes);
        var bounds = new int[tasks + 1];
        for (int k = 1, q = 0; k <= tasks; k++)
        {
            long share = (long)start[planes] * k / tasks;
            while (q < planes && start[q] < share)
            {
                q++;
            }

            bounds[k] = k == tasks ? planes : q;
        }

        var (reusedAddress, streamedAddress, startAddress, offsetAddress, gradientAddress) =
            ((nint)reused, (nint)streamed, (nint)start, (nint)offset, (nint)gradient);
        bool wide = Simd.Allow512;
        KernelThreads.ForEach(tasks, threads, task =>
        {
            int q0 = bounds[task], q1 = bounds[task + 1];
            int* runs = (int*)startAddress;
            float* sums = (float*)gradientAddress;
            new Span<float>(sums + runs[q0], runs[q1] - runs[q0]).Clear();
            for (int b0 = 0; b0 < batch; b0 += items)
            {
                int count = Math.Min(items, batch - b0);
                for (int p0 = 0; p0 < plane; p0 += tile)
                {
                    int length = Math.Min(tile, plane - p0);
                    float* x = (float*)reusedAddress + b0 * reusedItem + p0;
                    for (int q = q0; q < q1; q++)
                    {
                        float* dy = (float*)streamedAddress + b0 * streamedItem + (long)q * plane + p0;
                        for (int t = runs[q], end = runs[q + 1]; t < end; t += 8)
                        {
                            if (wide)
                            {
                                EightDotProducts<Simd512, Vector512<float>>(x, reusedItem, dy, streamedItem, count, length, (nint*)offsetAddress + t, sums + t);
                            }
                            else
                            {
                                EightDotProducts<Simd256, Vector256<float>>(x, reusedItem, dy, streamedItem, count, length, (nint*)offsetAddress + t, sums + t);
                            }
                        }
                    }
                }
            }
        });
    }

    /// <summary>
    /// One source block's terms (runs[q] to runs[q + 1]) of output planes q0 to q1 over a tile of <paramref name="length"/>
    /// floats, each plane's tile written or (<paramref name="accumulate"/>) added to: the tile in pieces of 8 vectors, then
    /// of 4, then a masked piece of up to 4 or of 1 vector, each piece over all the planes before the next piece; the
    /// piece kernels are inlined into the loop over the planes and a piece's masks are made once for all of them, because a
    /// block's run of a plane is a few terms (8 at density 1/4 with 32 source planes a block).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Planes<TSimd, TVector>(float* x, float* y, long plane, int length, int q0, int q1, int* runs, nint* offset,
        float* weight, bool accumulate)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int lanes = TSimd.Lanes, p = 0;
        for (; p + 8 * lanes <= length; p += 8 * lanes)
        {
            for (int q = q0; q < q1; q++)
            {
                if (!accumulate || runs[q] < runs[q + 1])
                {
                    EightVectors<TSimd, TVector>(x + p, y + q * plane + p, runs[q], runs[q + 1], offset, weight, accumulate);
                }
            }
        }

        while (p < length)
        {
            int valid = Math.Min(length - p, 4 * lanes);
            var (m0, m1, m2, m3) = (Mask<TSimd, TVector>(valid, 0), Mask<TSimd, TVector>(valid, 1), Mask<TSimd, TVector>(valid, 2),
                Mask<TSimd, TVector>(valid, 3));
            for (int q = q0; q < q1; q++)
            {
                if (!accumulate || runs[q] < runs[q + 1])
                {
                    if (valid > lanes)
                    {
                        FourVectors<TSimd, TVector>(x + p, y + q * plane + p, m0, m1, m2, m3, runs[q], runs[q + 1], offset, weight, accumulate);
                    }
                    else
                    {
                        OneVector<TSimd, TVector>(x + p, y + q * plane + p, m0, runs[q], runs[q + 1], offset, weight, accumulate);
                    }
                }
            }

            p += valid;
        }
    }

    /// <summary>8 whole vectors of one plane, summed over its terms in registers, from zero or (<paramref name="accumulate"/>) from <paramref name="y"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EightVectors<TSimd, TVector>(float* x, float* y, int first, int end, nint* offset, float* weight, bool accumulate)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        nint l = TSimd.Lanes;
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero, a4 = TSimd.Zero, a5 = TSimd.Zero, a6 = TSimd.Zero, a7 = TSimd.Zero;
        if (accumulate)
        {
            (a0, a1, a2, a3) = (TSimd.Load(y), TSimd.Load(y + l), TSimd.Load(y + 2 * l), TSimd.Load(y + 3 * l));
            (a4, a5, a6, a7) = (TSimd.Load(y + 4 * l), TSimd.Load(y + 5 * l), TSimd.Load(y + 6 * l), TSimd.Load(y + 7 * l));
        }

        for (int t = first; t < end; t++)
        {
            var w = TSimd.Broadcast(weight[t]);
            float* s = x + offset[t];
            a0 = TSimd.MultiplyAdd(w, TSimd.Load(s), a0);
            a1 = TSimd.MultiplyAdd(w, TSimd.Load(s + l), a1);
            a2 = TSimd.MultiplyAdd(w, TSimd.Load(s + 2 * l), a2);
            a3 = TSimd.MultiplyAdd(w, TSimd.Load(s + 3 * l), a3);
            a4 = TSimd.MultiplyAdd(w, TSimd.Load(s + 4 * l), a4);
            a5 = TSimd.MultiplyAdd(w, TSimd.Load(s + 5 * l), a5);
            a6 = TSimd.MultiplyAdd(w, TSimd.Load(s + 6 * l), a6);
            a7 = TSimd.MultiplyAdd(w, TSimd.Load(s + 7 * l), a7);
        }

        TSimd.Store(y, a0);
        TSimd.Store(y + l, a1);
        TSimd.Store(y + 2 * l, a2);
        TSimd.Store(y + 3 * l, a3);
        TSimd.Store(y + 4 * l, a4);
        TSimd.Store(y + 5 * l, a5);
        TSimd.Store(y + 6 * l, a6);
        TSimd.Store(y + 7 * l, a7);
    }

    /// <summary>Up to 4 vectors of one plane, the lanes of masks <paramref name="m0"/> to <paramref name="m3"/> (none outside them read or written), as <see cref="EightVectors"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FourVectors<TSimd, TVector>(float* x, float* y, TVector m0, TVector m1, TVector m2, TVector m3, int first, int end,
        nint* offset, float* weight, bool accumulate)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int l = TSimd.Lanes;
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero;
        if (accumulate)
        {
            (a0, a1, a2, a3) = (TSimd.LoadMasked(y, m0), TSimd.LoadMasked(y + l, m1), TSimd.LoadMasked(y + 2 * l, m2), TSimd.LoadMasked(y + 3 * l, m3));
        }

        for (int t = first; t < end; t++)
        {
            var w = TSimd.Broadcast(weight[t]);
            float* s = x + offset[t];
            a0 = TSimd.MultiplyAdd(w, TSimd.LoadMasked(s, m0), a0);
            a1 = TSimd.MultiplyAdd(w, TSimd.LoadMasked(s + l, m1), a1);
            a2 = TSimd.MultiplyAdd(w, TSimd.LoadMasked(s + 2 * l, m2), a2);
            a3 = TSimd.MultiplyAdd(w, TSimd.LoadMasked(s + 3 * l, m3), a3);
        }

        TSimd.StoreMasked(y, m0, a0);
        TSimd.StoreMasked(y + l, m1, a1);
        TSimd.StoreMasked(y + 2 * l, m2, a2);
        TSimd.StoreMasked(y + 3 * l, m3, a3);
    }

    /// <summary>One vector of one plane, the lanes of <paramref name="mask"/>, as <see cref="FourVectors"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OneVector<TSimd, TVector>(float* x, float* y, TVector mask, int first, int end, nint* offset, float* weight, bool accumulate)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        TVector a0 = accumulate ? TSimd.LoadMasked(y, mask) : TSimd.Zero, a1 = TSimd.Zero;
        int t = first;
        for (; t + 1 < end; t += 2) // two chains, so that consecutive terms' multiply-adds overlap
        {
            a0 = TSimd.MultiplyAdd(TSimd.Broadcast(weight[t]), TSimd.LoadMasked(x + offset[t], mask), a0);
            a1 = TSimd.MultiplyAdd(TSimd.Broadcast(weight[t + 1]), TSimd.LoadMasked(x + offset[t + 1], mask), a1);
        }

        if (t < end)
        {
            a0 = TSimd.MultiplyAdd(TSimd.Broadcast(weight[t]), TSimd.LoadMasked(x + offset[t], mask), a0);
        }

        TSimd.StoreMasked(y, mask, TSimd.Add(a0, a1));
    }

    /// <summary>The 8 terms' dot products of a streamed plane with their reused planes over a tile, added to their weights' sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EightDotProducts<TSimd, TVector>(float* reused, long reusedItem, float* streamed, long streamedItem, int batch, int length,
        nint* offset, float* gradient)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        int l = TSimd.Lanes;
        TVector a0 = TSimd.Zero, a1 = TSimd.Zero, a2 = TSimd.Zero, a3 = TSimd.Zero, a4 = TSimd.Zero, a5 = TSimd.Zero, a6 = TSimd.Zero, a7 = TSimd.Zero;
        var (o0, o1, o2, o3, o4, o5, o6, o7) = (offset[0], offset[1], offset[2], offset[3], offset[4], offset[5], offset[6], offset[7]);
        var tail = TSimd.MaskOf(length % l);
        for (int b = 0; b < batch; b++)
        {
            float* x = reused + b * reusedItem, g = streamed + b * streamedItem;
            int p = 0;
            for (; p + l <= length; p += l)
            {
                var d = TSimd.Load(g + p);
                float* s = x + p;
                a0 = TSimd.MultiplyAdd(d, TSimd.Load(s + o0), a0);
                a1 = TSimd.MultiplyAdd(d, TSimd.Load(s + o1), a1);
                a2 = TSimd.MultiplyAdd(d, TSimd.Load(s + o2), a2);
                a3 = TSimd.MultiplyAdd(d, TSimd.Load(s + o3), a3);
                a4 = TSimd.MultiplyAdd(d, TSimd.Load(s + o4), a4);
                a5 = TSimd.MultiplyAdd(d, TSimd.Load(s + o5), a5);
                a6 = TSimd.MultiplyAdd(d, TSimd.Load(s + o6), a6);
                a7 = TSimd.MultiplyAdd(d, TSimd.Load(s + o7), a7);
            }

            if (p < length)
            {
                var d = TSimd.LoadMasked(g + p, tail);
                float* s = x + p;
                a0 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o0, tail), a0);
                a1 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o1, tail), a1);
                a2 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o2, tail), a2);
                a3 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o3, tail), a3);
                a4 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o4, tail), a4);
                a5 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o5, tail), a5);
                a6 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o6, tail), a6);
                a7 = TSimd.MultiplyAdd(d, TSimd.LoadMasked(s + o7, tail), a7);
            }
        }

        (Vector256.Load(gradient) + TSimd.Sums(a0, a1, a2, a3, a4, a5, a6, a7)).Store(gradient);
    }

    /// <summary>The lanes of vector <paramref name="k"/> that lie within the first <paramref name="valid"/> floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Mask<TSimd, TVector>(int valid, int k)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct =>
        TSimd.MaskOf(Math.Clamp(valid - k * TSimd.Lanes, 0, TSimd.Lanes));
}
