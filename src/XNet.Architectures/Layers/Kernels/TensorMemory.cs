using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>Raw access to a CPU tensor's storage, for the vectorised kernels.</summary>
internal static unsafe partial class TensorMemory
{
    /// <summary>The first element of a contiguous float32 CPU tensor.</summary>
    /// <exception cref="ArgumentException">When the tensor is not a contiguous float32 CPU tensor.</exception>
    public static float* Floats(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float32 || tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
        {
            throw new ArgumentException(
                $"The sparse kernels need a contiguous float32 CPU tensor, got {tensor.dtype} on {tensor.device} (contiguous: {tensor.is_contiguous()}).");
        }

        return (float*)Data(tensor.Handle);
    }

    /// <summary>The first byte of a contiguous CPU tensor of any element type.</summary>
    /// <exception cref="ArgumentException">When the tensor is not a contiguous CPU tensor.</exception>
    public static void* Address(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
        {
            throw new ArgumentException($"Expected a contiguous CPU tensor, got one on {tensor.device} (contiguous: {tensor.is_contiguous()}).");
        }

        return (void*)Data(tensor.Handle);
    }

    /// <summary>The elements of a contiguous int64 CPU tensor, read in place.</summary>
    /// <exception cref="ArgumentException">When the tensor is not a contiguous int64 CPU tensor.</exception>
    public static ReadOnlySpan<long> Int64s(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Int64 || tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
        {
            throw new ArgumentException(
                $"Expected a contiguous int64 CPU tensor, got {tensor.dtype} on {tensor.device} (contiguous: {tensor.is_contiguous()}).");
        }

        return new ReadOnlySpan<long>((void*)Data(tensor.Handle), checked((int)tensor.numel()));
    }

    // TorchSharp keeps its own binding internal; LibTorchSharp (already loaded by TorchSharp) exports the same C function.
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    private static partial IntPtr Data(IntPtr tensor);
}
