using System.Runtime.InteropServices;

/// <summary>
/// Fixes glibc malloc's thresholds for a benchmark process, so that a layer's buffers are reused from the heap instead of
/// being mapped afresh on every call.
/// </summary>
/// <remarks>
/// By default glibc serves blocks above a threshold that moves with the program's history from freshly mapped pages, and
/// hands freed memory at the top of the heap back to the kernel; a layer whose buffers cross the threshold then pays a
/// page fault and a zeroed page per 4 KB on every call, and how often depends on what ran before. That was the noise
/// between layer runs (docs/benchmarks.md): the dense 16->16 3x3 @32 layer took 4.1-10.5 ms in runs minutes apart, with
/// 281,000 page faults in one 2-second run, and 4.35-4.40 ms with 48,000 once the thresholds were fixed.
/// </remarks>
internal static class GlibcAllocator
{
    private const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3;

    /// <summary>
    /// Serves blocks up to 32 MB (glibc's largest threshold) from the heap and keeps up to 1 GB of freed memory; returns
    /// false where the C library is not glibc.
    /// </summary>
    public static bool KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return mallopt(MmapThreshold, 32 << 20) == 1 && mallopt(TrimThreshold, 1 << 30) == 1 && mallopt(TopPad, 64 << 20) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            return false; // a C library without mallopt (musl)
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int parameter, int value);
}
