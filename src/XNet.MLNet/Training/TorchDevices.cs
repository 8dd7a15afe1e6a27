using System.Diagnostics;
using TorchSharp;
using XNet.Architectures;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>The device a run uses, how to describe it in a log, and why it is not the one asked for (if so).</summary>
/// <param name="Device">The device.</param>
/// <param name="Description">For logs: <c>cpu (2 threads)</c>, or <c>cuda:0 (NVIDIA H100 80GB HBM3, 81559 MiB)</c>.</param>
/// <param name="Fallback">Why the CPU is used although CUDA was requested (MLContext.FallbackToCpu or FallbackToCpu); null otherwise.</param>
public sealed record DeviceChoice(Device Device, string Description, string? Fallback);

/// <summary>Chooses the device a model trains and scores on.</summary>
public static class TorchDevices
{
    /// <summary>
    /// Resolves <c>null</c>/<c>"auto"</c> (CUDA when available, else CPU), <c>"cpu"</c>, <c>"cuda"</c> or <c>"cuda:N"</c>.
    /// </summary>
    /// <param name="requested">The requested device.</param>
    /// <param name="fallbackToCpu">Use the CPU when CUDA was requested but is not available, instead of throwing.</param>
    /// <exception cref="ArgumentException">When the text is not a device name.</exception>
    /// <exception cref="InvalidOperationException">When CUDA (or that CUDA index) is not available and fallback is off.</exception>
    public static Device Resolve(string? requested, bool fallbackToCpu = false) => Choose(requested, fallbackToCpu).Device;

    /// <summary>
    /// Chooses the device as ML.NET's own GPU trainers do: an explicit <paramref name="requested"/> device wins; otherwise
    /// (<c>null</c> or <c>"auto"</c>) <paramref name="gpuDeviceId"/> (MLContext.GpuDeviceId) when set, else CUDA when
    /// available, else the CPU. A requested CUDA device that does not exist is an error, or the CPU with the reason in
    /// <see cref="DeviceChoice.Fallback"/> when <paramref name="fallbackToCpu"/> (MLContext.FallbackToCpu) is set.
    /// </summary>
    /// <exception cref="ArgumentException">When the text is not a device name.</exception>
    /// <exception cref="InvalidOperationException">When the CUDA device does not exist and fallback is off.</exception>
    public static DeviceChoice Choose(string? requested, bool fallbackToCpu, int? gpuDeviceId = null)
    {
        TorchRuntime.EnsureLoaded();
        string name = string.IsNullOrWhiteSpace(requested) ? "auto" : requested.Trim().ToLowerInvariant();
        if (name == "auto" && gpuDeviceId is int id)
        {
            name = $"cuda:{id}";
            requested = $"{requested ?? "auto"} with MLContext.GpuDeviceId = {id}";
        }

        if (name == "auto")
        {
            return Describe(cuda.is_available() ? CUDA : CPU, null);
        }

        if (name == "cpu")
        {
            return Describe(CPU, null);
        }

        int index = 0;
        if (name != "cuda" && !(name.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(name.AsSpan(5), out index) && index >= 0))
        {
            throw new ArgumentException($"Device '{requested}' is not valid; expected 'auto', 'cpu', 'cuda' or 'cuda:N'.", nameof(requested));
        }

        int available = cuda.is_available() ? cuda.device_count() : 0;
        if (index < available)
        {
            return Describe(new Device(DeviceType.CUDA, index), null);
        }

        string reason = available == 0
            ? $"Device '{requested}' was requested but CUDA is not available: this build uses the CPU backend " +
              "(build with -p:XNetTorchBackend=cuda on a machine with an NVIDIA driver) or pass device 'cpu'."
            : $"Device '{requested}' was requested but only {available} CUDA device(s) exist (cuda:0..cuda:{available - 1}).";
        return fallbackToCpu ? Describe(CPU, reason + " Falling back to the CPU.") : throw new InvalidOperationException(reason);
    }

    private static DeviceChoice Describe(Device device, string? fallback) => new(device,
        device.type == DeviceType.CUDA ? $"cuda:{device.index} ({CudaName(device.index)})" : $"cpu ({get_num_threads()} threads)",
        fallback);

    /// <summary>Name and memory of a CUDA device from nvidia-smi (TorchSharp exposes neither); "CUDA device N" without it.</summary>
    private static string CudaName(int index)
    {
        try
        {
            var start = new ProcessStartInfo("nvidia-smi", $"--query-gpu=name,memory.total --format=csv,noheader -i {index}")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start);
            if (process is not null && process.WaitForExit(5000) && process.ExitCode == 0)
            {
                string line = process.StandardOutput.ReadToEnd().Trim();
                if (line.Length > 0)
                {
                    return line;
                }
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // nvidia-smi is not installed: fall through.
        }

        return $"CUDA device {index}";
    }
}
