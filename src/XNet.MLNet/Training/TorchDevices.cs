using TorchSharp;
using XNet.Architectures;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

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
    public static Device Resolve(string? requested, bool fallbackToCpu = false)
    {
        TorchRuntime.EnsureLoaded();
        string name = string.IsNullOrWhiteSpace(requested) ? "auto" : requested.Trim().ToLowerInvariant();
        if (name == "auto")
        {
            return cuda.is_available() ? CUDA : CPU;
        }

        if (name == "cpu")
        {
            return CPU;
        }

        int index = 0;
        if (name != "cuda" && !(name.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(name.AsSpan(5), out index) && index >= 0))
        {
            throw new ArgumentException($"Device '{requested}' is not valid; expected 'auto', 'cpu', 'cuda' or 'cuda:N'.", nameof(requested));
        }

        int available = cuda.is_available() ? cuda.device_count() : 0;
        if (index < available)
        {
            return new Device(DeviceType.CUDA, index);
        }

        if (fallbackToCpu)
        {
            return CPU;
        }

        throw new InvalidOperationException(available == 0
            ? $"Device '{requested}' was requested but CUDA is not available: this build uses the CPU backend " +
              "(build with -p:XNetTorchBackend=cuda on a machine with an NVIDIA driver) or pass device 'cpu'."
            : $"Device '{requested}' was requested but only {available} CUDA device(s) exist (cuda:0..cuda:{available - 1}).");
    }
}
