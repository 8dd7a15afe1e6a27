using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace XNet.Architectures;

/// <summary>Raised when TorchSharp's native libraries cannot be loaded; the message names the real cause.</summary>
public sealed class TorchNativeLoadException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public TorchNativeLoadException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>Loads TorchSharp's native backend once and turns its misleading failures into actionable ones.</summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool loaded;

    /// <summary>Makes sure libtorch and LibTorchSharp are loaded.</summary>
    /// <exception cref="TorchNativeLoadException">When they cannot be loaded; the message says why.</exception>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (loaded)
            {
                return;
            }

            try
            {
                InitializeDeviceType(DeviceType.CPU);
                loaded = true;
            }
            catch (Exception ex) when (ex is NotSupportedException or DllNotFoundException or TypeInitializationException)
            {
                throw new TorchNativeLoadException(Diagnose(), ex);
            }
        }
    }

    private static string Diagnose()
    {
        string baseDirectory = AppContext.BaseDirectory;
        string[] candidates =
        {
            Path.Combine(baseDirectory, "libLibTorchSharp.so"),
            Path.Combine(baseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            Path.Combine(baseDirectory, "LibTorchSharp.dll"),
            Path.Combine(baseDirectory, "runtimes", "win-x64", "native", "LibTorchSharp.dll"),
            Path.Combine(baseDirectory, "libLibTorchSharp.dylib"),
            Path.Combine(baseDirectory, "runtimes", "osx-arm64", "native", "libLibTorchSharp.dylib"),
        };
        string? library = candidates.FirstOrDefault(File.Exists);
        if (library is null)
        {
            return $"TorchSharp's native library (LibTorchSharp) is not in '{baseDirectory}'. Executables and test projects need a " +
                   "native backend: build them with the repository's build/ props (XNetUsesNativeTorch=true, XNetTorchBackend=cpu|cuda) " +
                   "or reference libtorch-cpu-linux-x64 2.10.0 yourself. See docs/troubleshooting.md.";
        }

        try
        {
            NativeLibrary.Free(NativeLibrary.Load(library));
        }
        catch (DllNotFoundException ex)
        {
            string cause = ex.Message;
            string hint = cause.Contains("GLIBCXX_", StringComparison.Ordinal)
                ? " The system libstdc++ is older than the one TorchSharp 0.107 was built with (it records GLIBCXX_3.4.32). " +
                  "The XNet build targets (build/ in the repository, buildTransitive/ in the XNet.Architectures package) mark " +
                  "that unused version need weak after build and publish; if you copied the output by hand or set " +
                  "XNetPatchLibTorchSharp=false, rebuild or republish with them, and a project that references XNet.MLNet's " +
                  "project file from outside the repository imports build/XNet.LibTorchSharpFix.targets itself. " +
                  "See docs/troubleshooting.md."
                : " See docs/troubleshooting.md.";
            return $"TorchSharp's native library '{library}' cannot be loaded: {cause}.{hint}";
        }

        return $"TorchSharp's native library '{library}' loads, but libtorch could not be initialised. Check that " +
               "libtorch (libtorch_cpu.so, libc10.so) sits beside it and matches TorchSharp 0.107 (libtorch 2.10). " +
               "See docs/troubleshooting.md.";
    }
}
