using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// Runs the sparse kernels' tasks in parallel on libtorch's own OpenMP thread team when it can, on .NET threads otherwise.
/// </summary>
/// <remarks>
/// libtorch's OpenMP workers spin for a while after every parallel operator (GNU OpenMP's default wait policy), so a
/// .NET thread started right after a batch norm or ReLU shares its core with a spinning worker: measured on the 2-core
/// machine, a kernel given 2 .NET threads ran no faster than on 1. Handing the work to the same team through
/// <c>GOMP_parallel</c>, as libtorch's own <c>at::parallel_for</c> does, puts it on the threads that are already awake.
/// Tasks are taken in chunks from a shared counter, so a thread slowed by another process takes fewer chunks.
/// </remarks>
internal static unsafe class KernelThreads
{
    private static readonly delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> GompParallel = FindGompParallel();

    /// <summary>Whether work runs on libtorch's OpenMP team (false: on the .NET thread pool).</summary>
    public static bool UsesOpenMp => GompParallel != null;

    /// <summary>Runs <paramref name="run"/> for every task in [0, count) on up to <paramref name="threads"/> threads.</summary>
    public static void ForEach(long count, int threads, Action<long> run)
    {
        long chunk = Math.Max(1, count / (threads * 16L));
        int workers = (int)Math.Min(threads, (count + chunk - 1) / chunk);
        var work = new Work(count, chunk, run);
        if (workers <= 1)
        {
            work.RunChunks();
        }
        else if (GompParallel != null)
        {
            var handle = GCHandle.Alloc(work);
            try
            {
                GompParallel(&RunOnTeamThread, (void*)GCHandle.ToIntPtr(handle), (uint)workers, 0);
            }
            finally
            {
                handle.Free();
            }
        }
        else
        {
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ => work.RunChunks());
        }

        work.ThrowIfFailed();
    }

    /// <summary>A (batch item, plane) task: its index in batch-major order and the plane's range of terms or groups.</summary>
    public delegate void PlaneTask(long batchItem, int plane, long task, int first, int end);

    /// <summary>
    /// Runs every (batch item, plane) pair, batch-major (consecutive tasks share a batch item's planes in cache), handing
    /// each its plane's range [start[plane], start[plane + 1]).
    /// </summary>
    public static void ForEachPlane(int batch, int planes, int* start, int threads, PlaneTask run)
    {
        nint starts = (nint)start;
        ForEach((long)batch * planes, threads, task =>
        {
            int plane = (int)(task % planes);
            run(task / planes, plane, task, ((int*)starts)[plane], ((int*)starts)[plane + 1]);
        });
    }

    [UnmanagedCallersOnly]
    private static void RunOnTeamThread(void* state) => ((Work)GCHandle.FromIntPtr((IntPtr)state).Target!).RunChunks();

    /// <summary>GOMP_parallel from the OpenMP runtime libtorch loaded (GNU libgomp, or LLVM/Intel runtimes, which export it too).</summary>
    private static delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> FindGompParallel()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("XNET_KERNEL_THREADS") == "dotnet")
        {
            return null;
        }

        try
        {
            // The runtime's file name carries a build hash (libgomp-98b21ff3.so.1), so it is found among the mapped files.
            string? path = File.ReadLines("/proc/self/maps")
                .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
                .FirstOrDefault(file => Path.GetFileName(file) is var name &&
                                        (name.StartsWith("libgomp", StringComparison.Ordinal) || name.StartsWith("libiomp", StringComparison.Ordinal) ||
                                         name.StartsWith("libomp", StringComparison.Ordinal)));
            return path is not null && NativeLibrary.TryLoad(path, out var library) && NativeLibrary.TryGetExport(library, "GOMP_parallel", out var export)
                ? (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)export
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The shared task counter and the first failure (an exception must not cross back into native code).</summary>
    private sealed class Work(long count, long chunk, Action<long> run)
    {
        private long next;
        private Exception? failure;

        public void RunChunks()
        {
            try
            {
                for (long first; (first = Interlocked.Add(ref next, chunk) - chunk) < count && failure is null;)
                {
                    for (long task = first, last = Math.Min(count, first + chunk); task < last; task++)
                    {
                        run(task);
                    }
                }
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref failure, ex, null);
            }
        }

        public void ThrowIfFailed()
        {
            if (failure is not null)
            {
                ExceptionDispatchInfoThrow(failure);
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void ExceptionDispatchInfoThrow(Exception ex) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex).Throw();
    }
}
