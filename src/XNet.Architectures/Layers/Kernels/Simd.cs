using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>The vector widths the kernels run at.</summary>
internal static class Simd
{
    /// <summary>
    /// Whether the kernels may use 16-lane AVX-512 vectors (true where the CPU has them). Tests turn it off to run the
    /// 8-lane paths an AVX2-only CPU takes; a plan must run under the setting it was built under.
    /// </summary>
    internal static bool Allow512 { get; set; } = Avx512F.IsSupported;

    /// <summary>16-lane vectors on AVX-512 machines for planes wider than 8; 8 lanes otherwise (a 16-lane vector would be half empty).</summary>
    public static bool Wide(int outWidth) => Allow512 && outWidth > Vector256<float>.Count;

    /// <summary>The first <paramref name="valid"/> lanes of 8 set (sign bit), the rest clear.</summary>
    public static Vector256<float> Mask(int valid) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(valid)).AsSingle();
}

/// <summary>The vector operations the kernels need, for one vector width; the JIT specialises each kernel per width.</summary>
internal unsafe interface ISimd<TVector>
    where TVector : struct
{
    static abstract int Lanes { get; }

    static abstract TVector Zero { get; }

    static abstract TVector Broadcast(float value);

    static abstract TVector Load(float* at);

    /// <summary>The lanes of <paramref name="mask"/> (<see cref="MaskOf"/>), zeros elsewhere; never reads the others.</summary>
    static abstract TVector LoadMasked(float* at, TVector mask);

    /// <summary>The first <paramref name="valid"/> lanes (fewer than all), zeros after; never reads past them.</summary>
    static abstract TVector LoadMasked(float* at, int valid);

    static abstract void Store(float* at, TVector value);

    /// <summary>Stores the lanes of <paramref name="mask"/>; never writes the others (another thread may own them).</summary>
    static abstract void StoreMasked(float* at, TVector mask, TVector value);

    /// <summary>Stores the first min(valid, Lanes) lanes; never writes past them.</summary>
    static abstract void Store(float* at, TVector value, int valid);

    /// <summary>The first <paramref name="valid"/> lanes set, the rest clear, for the masked loads and stores.</summary>
    static abstract TVector MaskOf(int valid);

    /// <summary>Lanes <paramref name="first"/> to <paramref name="end"/> - 1 set, the rest clear, for masked loads.</summary>
    static abstract TVector MaskBetween(int first, int end);

    /// <summary>Lane k takes lane k - 1 and lane 0 is zero: the left neighbours of a plane's first strip (zero padding).</summary>
    static abstract TVector ShiftUp(TVector value);

    /// <summary>Lane k takes lane k + 1 and the last lane is zero: the right neighbours of a plane's last strip.</summary>
    static abstract TVector ShiftDown(TVector value);

    /// <summary>The first halves of two vectors interleaved: a0, b0, a1, b1, ...</summary>
    static abstract TVector InterleaveLow(TVector a, TVector b);

    /// <summary>The second halves of two vectors interleaved.</summary>
    static abstract TVector InterleaveHigh(TVector a, TVector b);

    /// <summary>The even lanes of a, then the even lanes of b (the even columns of a row segment two vectors long).</summary>
    static abstract TVector EvenLanes(TVector a, TVector b);

    /// <summary>The odd lanes of a, then the odd lanes of b.</summary>
    static abstract TVector OddLanes(TVector a, TVector b);

    static abstract TVector MultiplyAdd(TVector a, TVector b, TVector addend);

    static abstract TVector Add(TVector a, TVector b);

    static abstract float Sum(TVector value);

    /// <summary>
    /// The sums of the lanes of eight vectors (a weight gradient's accumulators), in lanes 0 to 7: reduced
    /// together, lane pairs of two vectors at a time, where eight <see cref="Sum"/> calls reduce each alone (at 3 x 3
    /// @7 that took a quarter of a 512-channel layer's weight gradient).
    /// </summary>
    static abstract Vector256<float> Sums(TVector a0, TVector a1, TVector a2, TVector a3, TVector a4, TVector a5, TVector a6, TVector a7);
}

internal readonly unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Lanes => 8;

    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* at) => Avx.LoadVector256(at);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadMasked(float* at, Vector256<float> mask) => Avx.MaskLoad(at, mask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadMasked(float* at, int valid) => Avx.MaskLoad(at, Simd.Mask(valid));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* at, Vector256<float> value) => Avx.Store(at, value);

    /// <remarks>The mask must be a <see cref="MaskOf"/> mask (the first lanes set), as every caller's is.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreMasked(float* at, Vector256<float> mask, Vector256<float> value)
    {
        int valid = BitOperations.PopCount((uint)Avx.MoveMask(mask));
        Debug.Assert(Avx.MoveMask(mask) == (1 << valid) - 1, "a mask of the first lanes");
        Store(at, value, valid);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* at, Vector256<float> value, int valid)
    {
        if (valid >= 8)
        {
            Avx.Store(at, value);
            return;
        }

        // Plain stores of 4, 2 and 1 lanes, not vmaskmovps: AMD's Zen cores run that store as microcode (7.9 ns a store
        // against 1.7 for a plain one on a Zen 3 EPYC), and every row of a plane whose width is not a multiple of 8 ends
        // in one.
        var part = value.GetLower();
        if ((valid & 4) != 0)
        {
            Sse.Store(at, part);
            part = value.GetUpper();
            at += 4;
        }

        if ((valid & 2) != 0)
        {
            Sse.StoreLow(at, part);
            part = Sse.MoveHighToLow(part, part);
            at += 2;
        }

        if ((valid & 1) != 0)
        {
            Sse.StoreScalar(at, part);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaskOf(int valid) => Simd.Mask(valid);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaskBetween(int first, int end)
    {
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        return (Vector256.GreaterThanOrEqual(lane, Vector256.Create(first)) & Vector256.LessThan(lane, Vector256.Create(end))).AsSingle();
    }

    // A lane shift across the two 128-bit halves as a half swap with zero and a byte align: two shuffles and no constant
    // register (a permute with an index vector and a blend with zero left the JIT spilling both in register-bound kernels).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ShiftUp(Vector256<float> value)
    {
        var bytes = value.AsByte();
        return Avx2.AlignRight(bytes, Avx2.Permute2x128(bytes, bytes, 0x08), 12).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ShiftDown(Vector256<float> value)
    {
        var bytes = value.AsByte();
        return Avx2.AlignRight(Avx2.Permute2x128(bytes, bytes, 0x81), bytes, 4).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> EvenLanes(Vector256<float> a, Vector256<float> b) =>
        Avx2.Permute4x64(Avx.Shuffle(a, b, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> OddLanes(Vector256<float> a, Vector256<float> b) =>
        Avx2.Permute4x64(Avx.Shuffle(a, b, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> InterleaveLow(Vector256<float> a, Vector256<float> b) =>
        Avx.Permute2x128(Avx.UnpackLow(a, b), Avx.UnpackHigh(a, b), 0x20);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> InterleaveHigh(Vector256<float> a, Vector256<float> b) =>
        Avx.Permute2x128(Avx.UnpackLow(a, b), Avx.UnpackHigh(a, b), 0x31);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> addend) => Fma.MultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => Avx.Add(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> value) => Vector256.Sum(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sums(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
        Vector256<float> a4, Vector256<float> a5, Vector256<float> a6, Vector256<float> a7)
    {
        // Two rounds of pairwise additions leave, per 128-bit half, the half-sums of a0-a3 (and of a4-a7); adding the
        // halves across gives the eight sums in order.
        var a0123 = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
        var a4567 = Avx.HorizontalAdd(Avx.HorizontalAdd(a4, a5), Avx.HorizontalAdd(a6, a7));
        return Avx.Add(Avx.Permute2x128(a0123, a4567, 0x20), Avx.Permute2x128(a0123, a4567, 0x31));
    }
}

internal readonly unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Lanes => 16;

    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* at) => Avx512F.LoadVector512(at);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadMasked(float* at, Vector512<float> mask) =>
#if NET9_0_OR_GREATER
        Avx512F.MaskLoad(at, mask, Vector512<float>.Zero);
#else
        // .NET 8 has no AVX-512 masked load: two AVX ones, which also never touch the lanes outside the mask.
        Vector512.Create(Avx.MaskLoad(at, mask.GetLower()), Avx.MaskLoad(at + 8, mask.GetUpper()));
#endif

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadMasked(float* at, int valid) => LoadMasked(at, MaskOf(valid));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* at, Vector512<float> value) => Avx512F.Store(at, value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreMasked(float* at, Vector512<float> mask, Vector512<float> value)
    {
#if NET9_0_OR_GREATER
        Avx512F.MaskStore(at, mask, value);
#else
        Avx.MaskStore(at, mask.GetLower(), value.GetLower());
        Avx.MaskStore(at + 8, mask.GetUpper(), value.GetUpper());
#endif
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* at, Vector512<float> value, int valid)
    {
        // A masked store, never a read-modify-write of the whole vector: that could race with the thread writing the next plane.
        if (valid >= 16)
        {
            Avx512F.Store(at, value);
        }
        else
        {
            StoreMasked(at, MaskOf(valid), value);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ShiftUp(Vector512<float> value) =>
        Avx512F.AlignRight32(value.AsInt32(), Vector512<int>.Zero, 15).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ShiftDown(Vector512<float> value) =>
        Avx512F.AlignRight32(Vector512<int>.Zero, value.AsInt32(), 1).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> EvenLanes(Vector512<float> a, Vector512<float> b) =>
        Avx512F.PermuteVar16x32x2(a, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> OddLanes(Vector512<float> a, Vector512<float> b) =>
        Avx512F.PermuteVar16x32x2(a, Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> InterleaveLow(Vector512<float> a, Vector512<float> b) =>
        Avx512F.PermuteVar16x32x2(a, Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> InterleaveHigh(Vector512<float> a, Vector512<float> b) =>
        Avx512F.PermuteVar16x32x2(a, Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaskOf(int valid) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(valid)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaskBetween(int first, int end)
    {
        var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        return (Vector512.GreaterThanOrEqual(lane, Vector512.Create(first)) & Vector512.LessThan(lane, Vector512.Create(end))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> addend) =>
        Avx512F.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => Avx512F.Add(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> value) => Vector512.Sum(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sums(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7) =>
        Simd256.Sums(Halves(a0), Halves(a1), Halves(a2), Halves(a3), Halves(a4), Halves(a5), Halves(a6), Halves(a7));

    /// <summary>The lower half of a vector plus its upper half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Halves(Vector512<float> value) => Avx.Add(value.GetLower(), value.GetUpper());
}
