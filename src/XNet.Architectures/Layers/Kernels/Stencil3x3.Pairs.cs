using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Unit-stride planes exactly 8 wide (the last stage of the CIFAR ResNets and DenseNets) on AVX-512: two consecutive rows
/// fill one 16-lane vector, where the 8-lane path leaves half of every multiply-add unused.
/// </summary>
/// <remarks>
/// A vector holds rows r and r + 1 of an unpadded plane; the left and right neighbours come from lane shifts with the
/// lanes that cross from one row into the other cleared (zero padding), and rows outside the plane are masked out of the
/// loads. The output pair (2p, 2p + 1) is then w[u][v] · shift_v(rows (2p + u - 1, 2p + u)) summed in kernel order, the
/// same multiply-add chain as the 8-lane window, so forward and input gradient give the same bits on either path.
/// Reading the neighbours with masked loads one element off instead of shifting (three loads, no shuffles) measured
/// 15-20 % slower on the 2-core AVX-512 machine, the mask conversions included.
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>Whether a unit-stride plane of this width runs as row pairs.</summary>
    private static bool Paired(int width) => width == 8 && Simd.Allow512;

    /// <summary>Lanes 0 and 8 clear: a left neighbour shifted across a row boundary.</summary>
    private static readonly Vector512<float> KeepLeft = Vector512.Create(0, -1, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1).AsSingle();

    /// <summary>Lanes 7 and 15 clear: a right neighbour shifted across a row boundary.</summary>
    private static readonly Vector512<float> KeepRight = Vector512.Create(-1, -1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1, 0).AsSingle();

    /// <summary>One output plane as row pairs: the first group stores, the others add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelatePairs(float* input, float* output, int height, int first, int end, nint* origin, float* weight)
    {
        var (keepLeft, keepRight) = (KeepLeft, KeepRight);
        int pairs = (height + 1) / 2;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            var w00 = Vector512.Create(w[0]); var w01 = Vector512.Create(w[1]); var w02 = Vector512.Create(w[2]);
            var w10 = Vector512.Create(w[3]); var w11 = Vector512.Create(w[4]); var w12 = Vector512.Create(w[5]);
            var w20 = Vector512.Create(w[6]); var w21 = Vector512.Create(w[7]); var w22 = Vector512.Create(w[8]);
            bool add = g > first;
            float* x = input + origin[g];
            var above = RowPair(x, -1, height);
            var (aboveLeft, aboveRight) = Neighbours(above, keepLeft, keepRight);
            for (int p = 0; p < pairs; p++)
            {
                var centre = RowPair(x, 2 * p, height);
                var below = RowPair(x, 2 * p + 1, height);
                var (centreLeft, centreRight) = Neighbours(centre, keepLeft, keepRight);
                var (belowLeft, belowRight) = Neighbours(below, keepLeft, keepRight);
                var sum = Avx512F.FusedMultiplyAdd(w00, aboveLeft, Vector512<float>.Zero);
                sum = Avx512F.FusedMultiplyAdd(w01, above, sum);
                sum = Avx512F.FusedMultiplyAdd(w02, aboveRight, sum);
                sum = Avx512F.FusedMultiplyAdd(w10, centreLeft, sum);
                sum = Avx512F.FusedMultiplyAdd(w11, centre, sum);
                sum = Avx512F.FusedMultiplyAdd(w12, centreRight, sum);
                sum = Avx512F.FusedMultiplyAdd(w20, belowLeft, sum);
                sum = Avx512F.FusedMultiplyAdd(w21, below, sum);
                sum = Avx512F.FusedMultiplyAdd(w22, belowRight, sum);
                float* y = output + 16 * p;
                if (2 * p + 1 < height)
                {
                    Avx512F.Store(y, add ? Avx512F.Add(sum, Avx512F.LoadVector512(y)) : sum);
                }
                else
                {
                    // An odd height's last pair has one row.
                    var mask = Simd512.MaskOf(8);
                    Simd512.StoreMasked(y, mask, add ? Avx512F.Add(sum, Simd512.LoadMasked(y, mask)) : sum);
                }

                (above, aboveLeft, aboveRight) = (below, belowLeft, belowRight);
            }
        }
    }

    /// <summary>The 9 gradients of each group of one output plane as row pairs, over a run of batch items, added to <paramref name="gradient"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightGradientPairs(float* input, long inBatch, float* upstream, long upstreamBatch, int batch, int height,
        int first, int end, nint* origin, float* gradient)
    {
        var (keepLeft, keepRight) = (KeepLeft, KeepRight);
        int pairs = (height + 1) / 2;
        for (int g = first; g < end; g++)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default;
            for (int b = 0; b < batch; b++)
            {
                float* x = input + b * inBatch + origin[g], dy = upstream + b * upstreamBatch;
                var above = RowPair(x, -1, height);
                var (aboveLeft, aboveRight) = Neighbours(above, keepLeft, keepRight);
                for (int p = 0; p < pairs; p++)
                {
                    var d = RowPair(dy, 2 * p, height);
                    var centre = RowPair(x, 2 * p, height);
                    var below = RowPair(x, 2 * p + 1, height);
                    var (centreLeft, centreRight) = Neighbours(centre, keepLeft, keepRight);
                    var (belowLeft, belowRight) = Neighbours(below, keepLeft, keepRight);
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

            float* gw = gradient + 9 * g;
            (gw[0], gw[1], gw[2]) = (Vector512.Sum(a00), Vector512.Sum(a01), Vector512.Sum(a02));
            (gw[3], gw[4], gw[5]) = (Vector512.Sum(a10), Vector512.Sum(a11), Vector512.Sum(a12));
            (gw[6], gw[7], gw[8]) = (Vector512.Sum(a20), Vector512.Sum(a21), Vector512.Sum(a22));
        }
    }

    /// <summary>Rows r and r + 1 of an 8-wide plane, each zero where it lies outside the plane's rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> RowPair(float* plane, int r, int height)
    {
        if (r >= 0 && r + 1 < height)
        {
            return Avx512F.LoadVector512(plane + 8 * r);
        }

        // Lane k is pixel 8r + k of the plane: kept where that lies inside it (masked-out lanes are never read).
        var pixel = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + Vector512.Create(8 * r);
        var inside = Vector512.GreaterThanOrEqual(pixel, Vector512<int>.Zero) & Vector512.LessThan(pixel, Vector512.Create(8 * height));
        return Avx512F.MaskLoad(plane + 8 * r, inside.AsSingle(), Vector512<float>.Zero);
    }

    /// <summary>The left (column j - 1) and right (j + 1) neighbours of both rows of a pair, zero past each row's ends.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Left, Vector512<float> Right) Neighbours(Vector512<float> rows, Vector512<float> keepLeft,
        Vector512<float> keepRight) =>
        (Simd512.ShiftUp(rows) & keepLeft, Simd512.ShiftDown(rows) & keepRight);
}
