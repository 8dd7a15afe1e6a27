using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>The vector widths the kernels run at.</summary>
internal static class Simd
{
    /// <summary>16-lane vectors on AVX-512 machines for planes wider than 8; 8 lanes otherwise (a 16-lane vector would be half empty).</summary>
    public static bool Wide(int outWidth) => Avx512F.IsSupported && outWidth > Vector256<float>.Count;

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

    /// <summary>The first <paramref name="valid"/> lanes (fewer than all), zeros after; never reads past them.</summary>
    static abstract TVector LoadMasked(float* at, int valid);

    /// <summary>Stores the first min(valid, Lanes) lanes; never writes past them.</summary>
    static abstract void Store(float* at, TVector value, int valid);

    static abstract TVector MultiplyAdd(TVector a, TVector b, TVector addend);

    static abstract TVector Add(TVector a, TVector b);

    static abstract float Sum(TVector value);
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
    public static Vector256<float> LoadMasked(float* at, int valid) => Avx.MaskLoad(at, Simd.Mask(valid));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* at, Vector256<float> value, int valid)
    {
        if (valid >= 8)
        {
            Avx.Store(at, value);
        }
        else
        {
            Avx.MaskStore(at, Simd.Mask(valid), value);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> addend) => Fma.MultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => Avx.Add(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> value) => Vector256.Sum(value);
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
    public static Vector512<float> LoadMasked(float* at, int valid) =>
        valid >= 8
            ? Vector512.Create(Avx.LoadVector256(at), Avx.MaskLoad(at + 8, Simd.Mask(valid - 8)))
            : Vector512.Create(Avx.MaskLoad(at, Simd.Mask(valid)), Vector256<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* at, Vector512<float> value, int valid)
    {
        if (valid >= 16)
        {
            Avx512F.Store(at, value);
            return;
        }

        // Masked halves: a read-modify-write of the whole vector could race with the thread writing the next plane.
        Simd256.Store(at, value.GetLower(), valid);
        if (valid > 8)
        {
            Simd256.Store(at + 8, value.GetUpper(), valid - 8);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> addend) =>
        Avx512F.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => Avx512F.Add(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> value) => Vector512.Sum(value);
}
