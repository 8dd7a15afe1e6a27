using System.Runtime.InteropServices;

namespace XNet.Architectures;

/// <summary>
/// Fixes glibc malloc's settings for a training process, so that libtorch's large buffers are reused from the heap
/// instead of being mapped afresh, page-faulted and zeroed on every call.
/// </summary>
/// <remarks>
/// <para>
/// By default glibc serves blocks above a threshold that moves with the program's history from freshly mapped pages,
/// and hands freed memory at the top of the heap back to the kernel. Measured on the 2-core build machine (2026-11-26,
/// docs/benchmarks.md): one 2-second run of single-layer timings took 281,000 page faults with the defaults and 48,000
/// with the thresholds fixed, a dense 16->16 3x3 layer's time swung between 4.1 and 10.5 ms from run to run, and
/// ResNet-20 trained on Fashion-MNIST at 960 images/s with the defaults against 1,130-1,170 with the thresholds fixed.
/// </para>
/// <para>
/// glibc's mapping threshold stops at 32 MB, so larger blocks (a 256-channel 56 x 56 activation at batch 16 is 51 MB)
/// were still mapped afresh on every call: x-resnet-50-4's 64->256 1x1 layer at 224 px and batch 16 took 21-24 ms for
/// a forward pass that takes 5 with its output reused (2026-12-06). So fresh mappings are turned off altogether and
/// every block comes from the heap.
/// </para>
/// <para>
/// The price is memory: the process keeps up to 1 GB of freed heap instead of returning it, so resident memory stays
/// near its peak. That suits a training job, not necessarily a long-lived service; hence an explicit call (the
/// <c>xnet</c> command makes it at start-up) rather than a side effect of loading the library. The same settings can
/// be given from outside as <c>GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864</c>.
/// </para>
/// </remarks>
public static class GlibcAllocator
{
    private const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3, MmapMax = -4;

    /// <summary>
    /// Serves every block from the heap (none mapped on its own) and keeps up to 1 GB of freed memory, for the whole
    /// process. Call it before the first tensor is made.
    /// </summary>
    /// <returns>Whether the settings took effect: false off Linux or where the C library is not glibc.</returns>
    public static bool KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return mallopt(MmapThreshold, 32 << 20) == 1 && mallopt(MmapMax, 0) == 1 && mallopt(TrimThreshold, 1 << 30) == 1 &&
                   mallopt(TopPad, 64 << 20) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            return false; // a C library without mallopt (musl)
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int parameter, int value);
}
