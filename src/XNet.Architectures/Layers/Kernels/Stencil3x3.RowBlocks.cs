using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Unit-stride planes 16 wide whose height is a multiple of 8 (the CIFAR models' middle stage, on AVX-512), in blocks of 8
/// output rows whose sums stay in registers across all of the plane's groups.
/// </summary>
/// <remarks>
/// <see cref="CorrelatePlane{TSimd, TVector}"/> sweeps one group at a time and adds each finished row into the stored
/// plane. Here a block's 8 accumulators take every group in turn (8 independent multiply-add chains, 9 links per group)
/// and are stored once, for the price of reading 10 input rows per 8 output rows. The same idea for 8 x 8 planes is
/// <see cref="CorrelateOctet"/>. Measured with the <c>phases</c> benchmark (2026-11-26, batch 64, density 1/4): the
/// 32->32 @16 forward went from 0.49-0.51 to 0.21-0.24 ms in a training step's turn, but on 32 x 32 planes (two strips
/// per row, 4 blocks per strip) DenseNet-BC's 96->24 forward went from 2.8-3.2 to 3.4-3.6 ms, its 24 groups' rows
/// scattered over 96 planes, so wider planes keep the sweep. The sums run in another order than the sweep's, so the two
/// differ in rounding.
/// </remarks>
internal static unsafe partial class Stencil3x3
{
    /// <summary>Output rows per block: 8 accumulators, 9 weights and a row's 3 shifted vectors fit AVX-512's 32 registers.</summary>
    private const int BlockRows = 8;

    /// <summary>Whether a unit-stride plane runs in row blocks: AVX-512, one whole 16-lane strip per row, whole blocks.</summary>
    private static bool InRowBlocks(int height, int width) => Simd.Allow512 && width == Simd512.Lanes && height % BlockRows == 0;

    /// <summary>One output plane in row blocks (<see cref="InRowBlocks"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateRowBlocks(float* input, float* output, int height, int first, int end, nint* origin, float* weight)
    {
        for (int r0 = 0; r0 < height; r0 += BlockRows)
        {
            CorrelateRowBlock(input, output, r0, height, first, end, origin, weight);
        }
    }

    /// <summary>
    /// Output rows r0 .. r0 + 7: input row r0 - 1 + k meets output row r0 + k through kernel row 0, r0 + k - 1
    /// through kernel row 1 and r0 + k - 2 through kernel row 2; rows outside the plane are zero padding, never read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CorrelateRowBlock(float* input, float* output, int r0, int height, int first, int end, nint* origin, float* weight)
    {
        var zero = Vector512<float>.Zero;
        Vector512<float> a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
        bool top = r0 > 0, bottom = r0 + BlockRows < height;
        nint row = Simd512.Lanes;
        for (int g = first; g < end; g++)
        {
            float* w = weight + 9 * g;
            var w00 = Vector512.Create(w[0]); var w01 = Vector512.Create(w[1]); var w02 = Vector512.Create(w[2]);
            var w10 = Vector512.Create(w[3]); var w11 = Vector512.Create(w[4]); var w12 = Vector512.Create(w[5]);
            var w20 = Vector512.Create(w[6]); var w21 = Vector512.Create(w[7]); var w22 = Vector512.Create(w[8]);
            float* x = input + origin[g] + r0 * row; // input row r0
            Vector512<float> l, c, r;
            if (top)
            {
                OnlyStrip.Read<Simd512, Vector512<float>>(x - row, zero, out l, out c, out r);
                a0 = Taps3(a0, l, c, r, w00, w01, w02);
            }

            OnlyStrip.Read<Simd512, Vector512<float>>(x, zero, out l, out c, out r);
            a0 = Taps3(a0, l, c, r, w10, w11, w12);
            a1 = Taps3(a1, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + row, zero, out l, out c, out r);
            a0 = Taps3(a0, l, c, r, w20, w21, w22);
            a1 = Taps3(a1, l, c, r, w10, w11, w12);
            a2 = Taps3(a2, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + 2 * row, zero, out l, out c, out r);
            a1 = Taps3(a1, l, c, r, w20, w21, w22);
            a2 = Taps3(a2, l, c, r, w10, w11, w12);
            a3 = Taps3(a3, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + 3 * row, zero, out l, out c, out r);
            a2 = Taps3(a2, l, c, r, w20, w21, w22);
            a3 = Taps3(a3, l, c, r, w10, w11, w12);
            a4 = Taps3(a4, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + 4 * row, zero, out l, out c, out r);
            a3 = Taps3(a3, l, c, r, w20, w21, w22);
            a4 = Taps3(a4, l, c, r, w10, w11, w12);
            a5 = Taps3(a5, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + 5 * row, zero, out l, out c, out r);
            a4 = Taps3(a4, l, c, r, w20, w21, w22);
            a5 = Taps3(a5, l, c, r, w10, w11, w12);
            a6 = Taps3(a6, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + 6 * row, zero, out l, out c, out r);
            a5 = Taps3(a5, l, c, r, w20, w21, w22);
            a6 = Taps3(a6, l, c, r, w10, w11, w12);
            a7 = Taps3(a7, l, c, r, w00, w01, w02);
            OnlyStrip.Read<Simd512, Vector512<float>>(x + 7 * row, zero, out l, out c, out r);
            a6 = Taps3(a6, l, c, r, w20, w21, w22);
            a7 = Taps3(a7, l, c, r, w10, w11, w12);
            if (bottom)
            {
                OnlyStrip.Read<Simd512, Vector512<float>>(x + 8 * row, zero, out l, out c, out r);
                a7 = Taps3(a7, l, c, r, w20, w21, w22);
            }
        }

        float* y = output + r0 * row;
        Simd512.Store(y, a0);
        Simd512.Store(y + row, a1);
        Simd512.Store(y + 2 * row, a2);
        Simd512.Store(y + 3 * row, a3);
        Simd512.Store(y + 4 * row, a4);
        Simd512.Store(y + 5 * row, a5);
        Simd512.Store(y + 6 * row, a6);
        Simd512.Store(y + 7 * row, a7);
    }

    /// <summary>sum + one kernel row's three taps on one input row's left, centre and right neighbours.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Taps3(Vector512<float> sum, Vector512<float> left, Vector512<float> centre, Vector512<float> right,
        Vector512<float> wLeft, Vector512<float> wCentre, Vector512<float> wRight) =>
        Avx512F.FusedMultiplyAdd(wRight, right, Avx512F.FusedMultiplyAdd(wCentre, centre, Avx512F.FusedMultiplyAdd(wLeft, left, sum)));
}
