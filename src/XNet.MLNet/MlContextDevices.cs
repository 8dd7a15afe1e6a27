using Microsoft.ML.Runtime;

namespace XNet.MLNet;

/// <summary>
/// <c>MLContext.GpuDeviceId</c> and <c>MLContext.FallbackToCpu</c> as the trainer's environment holds them. ML.NET
/// keeps them on an internal interface that only its own packages see; the environment class exposes them as public
/// properties, read here by name. If a future ML.NET moves them, the trainer behaves as if they were unset.
/// </summary>
internal static class MlContextDevices
{
    public static (int? GpuDeviceId, bool FallbackToCpu) Read(IHostEnvironment environment)
    {
        var type = environment.GetType();
        var gpu = type.GetProperty("GpuDeviceId")?.GetValue(environment) as int?;
        var fallback = type.GetProperty("FallbackToCpu")?.GetValue(environment) as bool?;
        return (gpu, fallback ?? false);
    }
}
