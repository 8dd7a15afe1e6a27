using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Unit-stride planes 8 wide (the last stage of the CIFAR ResNets and DenseNets at a 32x32 input) on AVX-512: two
/// consecutive rows fill one 16-lane vector, where the 8-lane path leaves half of every multiply-add unused.
/// </summary>
/// <remarks>
/// A vector holds rows r and r + 1 of an unpadded plane in lanes 0-7 and 8-15 (<see cref="EightWidePairs"/>); the left
/// and right neighbours come from lane shifts with the lanes that cross from one row into the other cleared (zero
/// padding), and rows outside the plane are masked out of the loads. The output pair (2p, 2p + 1) is then
/// w[u][v] · shift_v(rows (2p + u - 1, 2p + u)) summed in kernel order. 8 x 8 planes, the common case, keep their four
/// row pairs' sums in registers across all of a plane's groups, in straight-line code (<see cref="CorrelateOctet"/>);
/// other heights add each group into the stored plane (<see cref="CorrelatePairs"/>), the 8-lane window's order, so
/// those give the same bits as the AVX2 path. Reading the neighbours with masked loads one element off instead of
/// shifting (three loads, no shuffles) measured 15-20 % slower on the 2-core AVX-512 machine, the mask conversions
/// included. Narrower planes put batch items side by side instead (<see cref="CorrelateSideBySide"/>).
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>Whether a unit-stride plane of this width runs as row pairs.</summary>
    private static bool Paired(int width) => width == 8 && Simd.Allow512;

    /// <summary>Lanes 0 and 8 clear: a left neighbour shifted across a row boundary.</summary>
    private static readonly Vector512<float> KeepLeft = Vector512.Create(0, -1, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1).AsSingle();

    /// <summary>Lanes 7 and 15 clear: a right neighbour shifted across a row boundary.</summary>
    private static readonly Vector512<float> KeepRight = Vector512.Create(-1, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1, 0).AsSingle();

    /// <summary>Lanes 8-15 only: the pair (-1, 0) above an 8 x 8 plane, whose first row is padding.</summary>
    private static readonly Vector512<float> UpperHalf = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1).AsSingle();

    /// <summary>Lanes 0-7 only: the pair (7, 8) at the foot of an 8 x 8 plane, whose second row is padding.</summary>
    private static readonly Vector512<float> LowerHalf = Vector512.Create(-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0).AsSingle();

    /// <summary>
    /// One 8 x 8 output plane (four row pairs) with its sums held in registers across all of the plane's groups, and
    /// stored once.
    /// </summary>
    /// <remarks>
    /// <see cref="CorrelatePairs"/> adds each group into the stored plane: its four 9-long multiply-add chains per group
    /// end in a load, an add and a store, and four chains are too few to keep both multiply-add units busy (about
    /// 0.7 multiply-adds per cycle measured). Here even and odd groups feed two sets of four accumulators, eight
    /// independent chains, and the plane is written once: the sum runs in another order than the generic path's, so
    /// the two differ in rounding, not in value.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateOctet(float* input, float* output, int first, int end, nint* origin, float* weight)
    {
        var (keepLeft, keepRight, upper, lower) = (KeepLeft, KeepRight, UpperHalf, LowerHalf);
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default;
        Vector512<float> o0 = default, o1 = default, o2 = default, o3 = default;
        int g = first;
        for (; g + 1 < end; g += 2)
        {
            AccumulateOctet(input + origin[g], weight + 9 * g, keepLeft, keepRight, upper, lower, ref e0, ref e1, ref e2, ref e3);
            AccumulateOctet(input + origin[g + 1], weight + 9 * (g + 1), keepLeft, keepRight, upper, lower, ref o0, ref o1, ref o2, ref o3);
        }

        if (g < end)
        {
            AccumulateOctet(input + origin[g], weight + 9 * g, keepLeft, keepRight, upper, lower, ref e0, ref e1, ref e2, ref e3);
        }

        Avx512F.Store(output, e0 + o0);
        Avx512F.Store(output + 16, e1 + o1);
        Avx512F.Store(output + 32, e2 + o2);
        Avx512F.Store(output + 48, e3 + o3);
    }

    /// <summary>One group's 3 x 3 correlation of an 8 x 8 plane, added to the four row-pair sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateOctet(float* x, float* w, Vector512<float> keepLeft, Vector512<float> keepRight, Vector512<float> upper,
        Vector512<float> lower, ref Vector512<float> s0, ref Vector512<float> s1, ref Vector512<float> s2, ref Vector512<float> s3)
    {
        var w00 = Vector512.Create(w[0]); var w01 = Vector512.Create(w[1]); var w02 = Vector512.Create(w[2]);
        var w10 = Vector512.Create(w[3]); var w11 = Vector512.Create(w[4]); var w12 = Vector512.Create(w[5]);
        var w20 = Vector512.Create(w[6]); var w21 = Vector512.Create(w[7]); var w22 = Vector512.Create(w[8]);

        // Pair r holds rows r and r + 1: output pair p reads pairs 2p - 1, 2p and 2p + 1, so the odd pairs serve two.
        var a = Simd512.LoadMasked(x - 8, upper);
        var (aL, aR) = Neighbours(a, keepLeft, keepRight);
        var b = Avx512F.LoadVector512(x);
        var (bL, bR) = Neighbours(b, keepLeft, keepRight);
        var c = Avx512F.LoadVector512(x + 8);
        var (cL, cR) = Neighbours(c, keepLeft, keepRight);
        s0 = PairSum(s0, aL, a, aR, bL, b, bR, cL, c, cR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
        b = Avx512F.LoadVector512(x + 16);
        (bL, bR) = Neighbours(b, keepLeft, keepRight);
        a = Avx512F.LoadVector512(x + 24);
        (aL, aR) = Neighbours(a, keepLeft, keepRight);
        s1 = PairSum(s1, cL, c, cR, bL, b, bR, aL, a, aR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
        b = Avx512F.LoadVector512(x + 32);
        (bL, bR) = Neighbours(b, keepLeft, keepRight);
        c = Avx512F.LoadVector512(x + 40);
        (cL, cR) = Neighbours(c, keepLeft, keepRight);
        s2 = PairSum(s2, aL, a, aR, bL, b, bR, cL, c, cR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
        b = Avx512F.LoadVector512(x + 48);
        (bL, bR) = Neighbours(b, keepLeft, keepRight);
        a = Simd512.LoadMasked(x + 56, lower);
        (aL, aR) = Neighbours(a, keepLeft, keepRight);
        s3 = PairSum(s3, cL, c, cR, bL, b, bR, aL, a, aR, w00, w01, w02, w10, w11, w12, w20, w21, w22);
    }

    /// <summary>sum + the 9 taps of one output row pair: its rows above, level and below, each with left and right neighbours.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PairSum(Vector512<float> sum, Vector512<float> topLeft, Vector512<float> top, Vector512<float> topRight,
        Vector512<float> left, Vector512<float> level, Vector512<float> right, Vector512<float> bottomLeft, Vector512<float> bottom,
        Vector512<float> bottomRight, Vector512<float> w00, Vector512<float> w01, Vector512<float> w02, Vector512<float> w10,
        Vector512<float> w11, Vector512<float> w12, Vector512<float> w20, Vector512<float> w21, Vector512<float> w22)
    {
        sum = Avx512F.FusedMultiplyAdd(w00, topLeft, sum);
        sum = Avx512F.FusedMultiplyAdd(w01, top, sum);
        sum = Avx512F.FusedMultiplyAdd(w02, topRight, sum);
        sum = Avx512F.FusedMultiplyAdd(w10, left, sum);
        sum = Avx512F.FusedMultiplyAdd(w11, level, sum);
        sum = Avx512F.FusedMultiplyAdd(w12, right, sum);
        sum = Avx512F.FusedMultiplyAdd(w20, bottomLeft, sum);
        sum = Avx512F.FusedMultiplyAdd(w21, bottom, sum);
        return Avx512F.FusedMultiplyAdd(w22, bottomRight, sum);
    }

    /// <summary>One output plane as row pairs: the first group stores, the others add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePairs(float* input, float* output, EightWidePairs pairs, int first, int end, nint* origin, float* weight)
    {
        int pairCount = (pairs.Height + 1) / 2;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            var w00 = Vector512.Create(w[0]); var w01 = Vector512.Create(w[1]); var w02 = Vector512.Create(w[2]);
            var w10 = Vector512.Create(w[3]); var w11 = Vector512.Create(w[4]); var w12 = Vector512.Create(w[5]);
            var w20 = Vector512.Create(w[6]); var w21 = Vector512.Create(w[7]); var w22 = Vector512.Create(w[8]);
            bool add = g > first;
            float* x = input + origin[g];
            var above = pairs.Load(x, -1);
            var (aboveLeft, aboveRight) = pairs.Neighbours(above);
            for (int p = 0; p < pairCount; p++)
            {
                var centre = pairs.Load(x, 2 * p);
                var below = pairs.Load(x, 2 * p + 1);
                var (centreLeft, centreRight) = pairs.Neighbours(centre);
                var (belowLeft, belowRight) = pairs.Neighbours(below);
                var sum = Avx512F.FusedMultiplyAdd(w00, aboveLeft, Vector512<float>.Zero);
                sum = Avx512F.FusedMultiplyAdd(w01, above, sum);
                sum = Avx512F.FusedMultiplyAdd(w02, aboveRight, sum);
                sum = Avx512F.FusedMultiplyAdd(w10, centreLeft, sum);
                sum = Avx512F.FusedMultiplyAdd(w11, centre, sum);
                sum = Avx512F.FusedMultiplyAdd(w12, centreRight, sum);
                sum = Avx512F.FusedMultiplyAdd(w20, belowLeft, sum);
                sum = Avx512F.FusedMultiplyAdd(w21, below, sum);
                sum = Avx512F.FusedMultiplyAdd(w22, belowRight, sum);
                pairs.Store(output, 2 * p, add ? Avx512F.Add(sum, pairs.Load(output, 2 * p)) : sum);
                (above, aboveLeft, aboveRight) = (below, belowLeft, belowRight);
            }
        }
    }

    /// <summary>The 9 gradients of each group of one output plane as row pairs, over a run of batch items, added to <paramref name="gradient"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientPairs(float* input, long inBatch, float* upstream, long upstreamBatch, int batch, EightWidePairs pairs,
        int first, int end, nint* origin, float* gradient)
    {
        int pairCount = (pairs.Height + 1) / 2;
        for (int g = first; g < end; g++)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default;
            for (int b = 0; b < batch; b++)
            {
                float* x = input + b * inBatch + origin[g], dy = upstream + b * upstreamBatch;
                var above = pairs.Load(x, -1);
                var (aboveLeft, aboveRight) = pairs.Neighbours(above);
                for (int p = 0; p < pairCount; p++)
                {
                    var d = pairs.Load(dy, 2 * p);
                    var centre = pairs.Load(x, 2 * p);
                    var below = pairs.Load(x, 2 * p + 1);
                    var (centreLeft, centreRight) = pairs.Neighbours(centre);
                    var (belowLeft, belowRight) = pairs.Neighbours(below);
                    a00 = Avx512F.FusedMultiplyAdd(d, aboveLeft, a00);
                    a01 = Avx512F.FusedMultiplyAdd(d, above, a01);
                    a02 = Avx512F.FusedMultiplyAdd(d, aboveRight, a02);
                    a10 = Avx512F.FusedMultiplyAdd(d, centreLeft, a10);
                    a11 = Avx512F.FusedMultiplyAdd(d, centre, a11);
                    a12 = Avx512F.FusedMultiplyAdd(d, centreRight, a12);
                    a20 = Avx512F.FusedMultiplyAdd(d, belowLeft, a20);
                    a21 = Avx512F.FusedMultiplyAdd(d, below, a21);
                    a22 = Avx512F.FusedMultiplyAdd(d, belowRight, a22);
                    (above, aboveLeft, aboveRight) = (below, belowLeft, belowRight);
                }
            }

            StoreTapSums<Simd512, Vector512<float>>(gradient + 9 * g, a00, a01, a02, a10, a11, a12, a20, a21, a22);
        }
    }

    /// <summary>
    /// The 9 gradients of each group of one 8 x 8 output plane over a run of batch items, added to <paramref name="gradient"/>:
    /// <see cref="WeightGradientPairs"/> with the plane's nine row pairs loaded in straight-line code.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientOctet(float* input, long inBatch, float* upstream, long upstreamBatch, int batch, int first, int end,
        nint* origin, float* gradient)
    {
        var (keepLeft, keepRight, upper, lower) = (KeepLeft, KeepRight, UpperHalf, LowerHalf);
        for (int g = first; g < end; g++)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default;
            for (int b = 0; b < batch; b++)
            {
                float* x = input + b * inBatch + origin[g], dy = upstream + b * upstreamBatch;
                // As in AccumulateOctet: output pair p meets input pairs 2p - 1, 2p and 2p + 1.
                var a = Simd512.LoadMasked(x - 8, upper);
                var (aL, aR) = Neighbours(a, keepLeft, keepRight);
                var c = Avx512F.LoadVector512(x);
                var (cL, cR) = Neighbours(c, keepLeft, keepRight);
                var e = Avx512F.LoadVector512(x + 8);
                var (eL, eR) = Neighbours(e, keepLeft, keepRight);
                var d = Avx512F.LoadVector512(dy);
                GradientTaps(d, aL, a, aR, cL, c, cR, eL, e, eR, ref a00, ref a01, ref a02, ref a10, ref a11, ref a12, ref a20, ref a21, ref a22);
                c = Avx512F.LoadVector512(x + 16);
                (cL, cR) = Neighbours(c, keepLeft, keepRight);
                a = Avx512F.LoadVector512(x + 24);
                (aL, aR) = Neighbours(a, keepLeft, keepRight);
                d = Avx512F.LoadVector512(dy + 16);
                GradientTaps(d, eL, e, eR, cL, c, cR, aL, a, aR, ref a00, ref a01, ref a02, ref a10, ref a11, ref a12, ref a20, ref a21, ref a22);
                c = Avx512F.LoadVector512(x + 32);
                (cL, cR) = Neighbours(c, keepLeft, keepRight);
                e = Avx512F.LoadVector512(x + 40);
                (eL, eR) = Neighbours(e, keepLeft, keepRight);
                d = Avx512F.LoadVector512(dy + 32);
                GradientTaps(d, aL, a, aR, cL, c, cR, eL, e, eR, ref a00, ref a01, ref a02, ref a10, ref a11, ref a12, ref a20, ref a21, ref a22);
                c = Avx512F.LoadVector512(x + 48);
                (cL, cR) = Neighbours(c, keepLeft, keepRight);
                a = Simd512.LoadMasked(x + 56, lower);
                (aL, aR) = Neighbours(a, keepLeft, keepRight);
                d = Avx512F.LoadVector512(dy + 48);
                GradientTaps(d, eL, e, eR, cL, c, cR, aL, a, aR, ref a00, ref a01, ref a02, ref a10, ref a11, ref a12, ref a20, ref a21, ref a22);
            }

            StoreTapSums<Simd512, Vector512<float>>(gradient + 9 * g, a00, a01, a02, a10, a11, a12, a20, a21, a22);
        }
    }

    /// <summary>One output row pair's upstream gradient times the 9 input neighbourhoods it met, added to the 9 sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientTaps(Vector512<float> d, Vector512<float> topLeft, Vector512<float> top, Vector512<float> topRight,
        Vector512<float> left, Vector512<float> level, Vector512<float> right, Vector512<float> bottomLeft, Vector512<float> bottom,
        Vector512<float> bottomRight, ref Vector512<float> a00, ref Vector512<float> a01, ref Vector512<float> a02, ref Vector512<float> a10,
        ref Vector512<float> a11, ref Vector512<float> a12, ref Vector512<float> a20, ref Vector512<float> a21, ref Vector512<float> a22)
    {
        a00 = Avx512F.FusedMultiplyAdd(d, topLeft, a00);
        a01 = Avx512F.FusedMultiplyAdd(d, top, a01);
        a02 = Avx512F.FusedMultiplyAdd(d, topRight, a02);
        a10 = Avx512F.FusedMultiplyAdd(d, left, a10);
        a11 = Avx512F.FusedMultiplyAdd(d, level, a11);
        a12 = Avx512F.FusedMultiplyAdd(d, right, a12);
        a20 = Avx512F.FusedMultiplyAdd(d, bottomLeft, a20);
        a21 = Avx512F.FusedMultiplyAdd(d, bottom, a21);
        a22 = Avx512F.FusedMultiplyAdd(d, bottomRight, a22);
    }

    /// <summary>Runs an 8-wide unit-stride plane (<see cref="Paired"/>): straight-line code for 8 x 8, row pairs group by group otherwise.</summary>
    private static void CorrelatePaired(float* input, float* output, int height, int first, int end, nint* origin, float* weight)
    {
        if (height == 8)
        {
            CorrelateOctet(input, output, first, end, origin, weight);
        }
        else
        {
            CorrelatePairs(input, output, new EightWidePairs(height), first, end, origin, weight);
        }
    }

    /// <summary>The weight gradient of one paired plane's groups (<see cref="CorrelatePaired"/>).</summary>
    private static void WeightGradientPaired(float* input, long inBatch, float* upstream, long upstreamBatch, int batch, int height,
        int first, int end, nint* origin, float* gradient)
    {
        if (height == 8)
        {
            WeightGradientOctet(input, inBatch, upstream, upstreamBatch, batch, first, end, origin, gradient);
        }
        else
        {
            WeightGradientPairs(input, inBatch, upstream, upstreamBatch, batch, new EightWidePairs(height), first, end, origin, gradient);
        }
    }

    /// <summary>Planes exactly 8 wide: a pair is 16 consecutive elements, and the lanes a shift carries across rows are cleared.</summary>
    private readonly struct EightWidePairs(int height)
    {
        private readonly Vector512<float> keepLeft = KeepLeft, keepRight = KeepRight;

        public int Height { get; } = height;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Load(float* plane, int r)
        {
            if (r >= 0 && r + 1 < Height)
            {
                return Avx512F.LoadVector512(plane + 8 * r);
            }

            // Only one of the rows is inside: lanes 8-15 when it is the second, lanes 0-7 when it is the first.
            if (r == -1 && Height > 0)
            {
                return Simd512.LoadMasked(plane - 8, UpperHalf);
            }

            return r == Height - 1 ? Simd512.LoadMasked(plane + 8 * r, LowerHalf) : Vector512<float>.Zero;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(float* plane, int r, Vector512<float> value)
        {
            int rows = Math.Min(2, Height - r);
            if (rows > 0)
            {
                Simd512.Store(plane + 8 * r, value, 8 * rows);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public (Vector512<float> Left, Vector512<float> Right) Neighbours(Vector512<float> rows) =>
            Stencil3x3.Neighbours(rows, keepLeft, keepRight);
    }

    /// <summary>The left (column j - 1) and right (j + 1) neighbours of both rows of a pair, zero past each row's ends.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Left, Vector512<float> Right) Neighbours(Vector512<float> rows, Vector512<float> keepLeft,
        Vector512<float> keepRight) =>
        (Simd512.ShiftUp(rows) & keepLeft, Simd512.ShiftDown(rows) & keepRight);
}
