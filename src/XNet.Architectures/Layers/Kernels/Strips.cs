using System.Runtime.CompilerServices;

namespace XNet.Architectures.Layers.Kernels;

// How the kernels read and write one vector-wide strip of a plane row, as type arguments: the JIT compiles one loop per
// combination, so the row loops themselves carry no branches for edges, masks or the first group's store.

/// <summary>How a kernel writes a finished output row segment: stored or added, whole or masked to the plane's width.</summary>
internal unsafe interface IRowWriter
{
    static abstract void Write<TSimd, TVector>(float* row, TVector value, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct;
}

/// <summary>The first contribution to a row segment, whole vectors.</summary>
internal readonly unsafe struct StoreRow : IRowWriter
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<TSimd, TVector>(float* row, TVector value, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => TSimd.Store(row, value);
}

/// <summary>A later contribution to a row segment, whole vectors.</summary>
internal readonly unsafe struct AddRow : IRowWriter
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<TSimd, TVector>(float* row, TVector value, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => TSimd.Store(row, TSimd.Add(value, TSimd.Load(row)));
}

/// <summary>The first contribution to the last, partial segment of a row.</summary>
internal readonly unsafe struct StoreMaskedRow : IRowWriter
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<TSimd, TVector>(float* row, TVector value, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => TSimd.StoreMasked(row, mask, value);
}

/// <summary>A later contribution to the last, partial segment of a row.</summary>
internal readonly unsafe struct AddMaskedRow : IRowWriter
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<TSimd, TVector>(float* row, TVector value, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => TSimd.StoreMasked(row, mask, TSimd.Add(value, TSimd.LoadMasked(row, mask)));
}

/// <summary>
/// How a unit-stride 3 x 3 kernel reads the three column-shifted vectors (columns j - 1, j, j + 1) of one row segment of an
/// unpadded plane: the plane's first strip takes its left neighbours from its own vector shifted (a zero enters), its
/// last strip its right neighbours (zeros past the plane's width, where the strip is masked), others load all three.
/// </summary>
internal unsafe interface IStripReader
{
    static abstract void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct;
}

/// <summary>Where a strip lies in its row, which picks its <see cref="IStripReader"/>.</summary>
internal enum StripKind
{
    /// <summary>Plane columns on both sides: <see cref="InnerStrip"/>.</summary>
    Inner,

    /// <summary><see cref="FirstStrip"/>.</summary>
    First,

    /// <summary><see cref="LastStrip"/>.</summary>
    Last,

    /// <summary><see cref="LastPartialStrip"/>.</summary>
    LastPartial,

    /// <summary><see cref="OnlyStrip"/>.</summary>
    Only,

    /// <summary><see cref="OnlyPartialStrip"/>.</summary>
    OnlyPartial,
}

/// <summary>Work done once per strip, given the strip's reader as a type (so the JIT specialises the loop for it).</summary>
internal interface IStripWork
{
    /// <summary>Runs the strip; <paramref name="partial"/>: it is narrower than a vector (its loads and stores are masked).</summary>
    void Run<TReader>(bool partial)
        where TReader : struct, IStripReader;
}

/// <summary>Classifies strips and runs work with the reader for each.</summary>
internal static class StripKinds
{
    /// <summary>The kind of the strip at column <paramref name="j0"/> with <paramref name="valid"/> columns left in its row.</summary>
    public static StripKind Of(int j0, int valid, int lanes) => (j0 == 0, valid <= lanes, valid < lanes) switch
    {
        (true, true, true) => StripKind.OnlyPartial,
        (true, true, false) => StripKind.Only,
        (true, false, _) => StripKind.First,
        (false, true, true) => StripKind.LastPartial,
        (false, true, false) => StripKind.Last,
        _ => StripKind.Inner,
    };

    /// <summary>Runs <paramref name="work"/> for the strip at column <paramref name="j0"/> with the reader of its kind.</summary>
    public static void Run<TWork>(int j0, int valid, int lanes, ref TWork work)
        where TWork : struct, IStripWork
    {
        switch (Of(j0, valid, lanes))
        {
            case StripKind.Inner:
                work.Run<InnerStrip>(false);
                break;
            case StripKind.First:
                work.Run<FirstStrip>(false);
                break;
            case StripKind.Last:
                work.Run<LastStrip>(false);
                break;
            case StripKind.LastPartial:
                work.Run<LastPartialStrip>(true);
                break;
            case StripKind.Only:
                work.Run<OnlyStrip>(false);
                break;
            default:
                work.Run<OnlyPartialStrip>(true);
                break;
        }
    }
}

/// <summary>A strip with plane columns on both sides.</summary>
internal readonly unsafe struct InnerStrip : IStripReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => (left, centre, right) = (TSimd.Load(at - 1), TSimd.Load(at), TSimd.Load(at + 1));
}

/// <summary>The first strip of a plane wider than one strip.</summary>
internal readonly unsafe struct FirstStrip : IStripReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        centre = TSimd.Load(at);
        (left, right) = (TSimd.ShiftUp(centre), TSimd.Load(at + 1));
    }
}

/// <summary>The last strip of a plane wider than one strip, whole.</summary>
internal readonly unsafe struct LastStrip : IStripReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        centre = TSimd.Load(at);
        (left, right) = (TSimd.Load(at - 1), TSimd.ShiftDown(centre));
    }
}

/// <summary>The last strip of a plane wider than one strip, partial (masked: nothing past the plane's width is read).</summary>
internal readonly unsafe struct LastPartialStrip : IStripReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        centre = TSimd.LoadMasked(at, mask);
        (left, right) = (TSimd.LoadMasked(at - 1, mask), TSimd.ShiftDown(centre));
    }
}

/// <summary>The only strip of a plane one strip wide, whole.</summary>
internal readonly unsafe struct OnlyStrip : IStripReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        centre = TSimd.Load(at);
        (left, right) = (TSimd.ShiftUp(centre), TSimd.ShiftDown(centre));
    }
}

/// <summary>The only strip of a plane narrower than one strip (masked).</summary>
internal readonly unsafe struct OnlyPartialStrip : IStripReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector left, out TVector centre, out TVector right)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        centre = TSimd.LoadMasked(at, mask);
        (left, right) = (TSimd.ShiftUp(centre), TSimd.ShiftDown(centre));
    }
}

/// <summary>How a kernel reads a row segment of an output gradient: whole, or masked to the plane's width (zeros past it).</summary>
internal unsafe interface IRowReader
{
    static abstract TVector Read<TSimd, TVector>(float* at, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct;
}

/// <summary>Whole row segments.</summary>
internal readonly unsafe struct WholeRows : IRowReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Read<TSimd, TVector>(float* at, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => TSimd.Load(at);
}

/// <summary>The last, partial segment of a row.</summary>
internal readonly unsafe struct MaskedRows : IRowReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Read<TSimd, TVector>(float* at, TVector mask)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => TSimd.LoadMasked(at, mask);
}

/// <summary>How the stride-2 input gradient reads an output-gradient row segment and the segment one column on.</summary>
internal unsafe interface IPairReader
{
    static abstract void Read<TSimd, TVector>(float* at, TVector mask, out TVector centre, out TVector next)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct;
}

/// <summary>A strip followed by more columns of its row.</summary>
internal readonly unsafe struct InnerPairs : IPairReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector centre, out TVector next)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct => (centre, next) = (TSimd.Load(at), TSimd.Load(at + 1));
}

/// <summary>The last strip of a row (masked to the row; the column past it is zero).</summary>
internal readonly unsafe struct LastPairs : IPairReader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Read<TSimd, TVector>(float* at, TVector mask, out TVector centre, out TVector next)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        centre = TSimd.LoadMasked(at, mask);
        next = TSimd.ShiftDown(centre);
    }
}
