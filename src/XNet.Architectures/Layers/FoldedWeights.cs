using System.IO.Hashing;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A conv unit's batch norm folded into its convolution for inference: the convolution's weight scaled per output channel
/// by gamma / sqrt(var + eps), and the shift that follows, with a fingerprint of every value they were made from.
/// </summary>
/// <remarks>
/// A unit keeps its folding from one scored batch to the next and folds again only when the fingerprint changes: reading
/// the statistics back and scaling the weight once per batch cost about as much as a small batch's convolutions. The
/// fingerprint hashes the values themselves, because TorchSharp shows no version counter, so an in-place change (an
/// optimiser's step, a loaded state, an edit under no_grad) reaches it like any other. The tensors live outside any
/// dispose scope; a folding that is replaced while another thread may still score with it is left to the finalizer.
/// </remarks>
internal sealed class FoldedWeights : IDisposable
{
    private FoldedWeights(UInt128 fingerprint, Tensor weight, float[] shift, Tensor? shiftTensor)
    {
        Fingerprint = fingerprint;
        Weight = weight;
        Shift = shift;
        ShiftTensor = shiftTensor;
    }

    /// <summary>The hash of the convolution's weight and bias and the batch norm's parameters, statistics and epsilon.</summary>
    public UInt128 Fingerprint { get; }

    /// <summary>The convolution's weight (an expander convolution's compact weight) times each output channel's multiplier.</summary>
    public Tensor Weight { get; }

    /// <summary>Each output channel's shift once folded: (bias - mean) x multiplier + beta.</summary>
    public float[] Shift { get; }

    /// <summary><see cref="Shift"/> as a tensor of the weight's type, for a dense convolution's bias; null for an expander convolution.</summary>
    public Tensor? ShiftTensor { get; }

    /// <summary>Folds <paramref name="norm"/> into <paramref name="weight"/> (with <paramref name="bias"/>), fingerprinted <paramref name="fingerprint"/>.</summary>
    public static FoldedWeights Fold(UInt128 fingerprint, Tensor weight, Tensor? bias, BatchNorm2d norm, bool withShiftTensor)
    {
        var folding = Export.BatchNormSpec.Of(norm, "1");
        float[]? biasValues = bias is null ? null : Export.OnnxExport.Data(bias);
        int channels = folding.Mean.Length;
        var multiplier = Enumerable.Range(0, channels).Select(c => (float)folding.Multiplier(c)).ToArray();
        var shift = Enumerable.Range(0, channels).Select(c => folding.Shift(c, biasValues?[c] ?? 0)).ToArray();
        using var noGrad = no_grad();
        using var scale = tensor(multiplier, device: weight.device).to(weight.dtype);
        var scaled = (weight * scale.view(-1, 1, 1, 1)).contiguous().DetachFromDisposeScope();
        var shiftTensor = withShiftTensor ? tensor(shift, device: weight.device).to(weight.dtype).DetachFromDisposeScope() : null;
        return new FoldedWeights(fingerprint, scaled, shift, shiftTensor);
    }

    /// <summary>The fingerprint of what <see cref="Fold"/> reads: every value of the tensors, and the epsilon.</summary>
    public static UInt128 FingerprintOf(Tensor weight, Tensor? bias, BatchNorm2d norm)
    {
        var hash = new XxHash128();
        foreach (var t in new[] { weight, bias, norm.weight, norm.bias, norm.running_mean, norm.running_var })
        {
            Append(hash, t);
        }

        hash.Append(BitConverter.GetBytes(norm.eps));
        return hash.GetCurrentHashAsUInt128();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Weight.Dispose();
        ShiftTensor?.Dispose();
    }

    private static unsafe void Append(XxHash128 hash, Tensor? t)
    {
        if (t is null)
        {
            hash.Append([0]);
            return;
        }

        using var values = t.device_type == DeviceType.CPU ? t.contiguous() : t.cpu().contiguous();
        long bytes = values.numel() * values.ElementSize;
        hash.Append(MemoryMarshal.AsBytes(stackalloc long[] { (long)values.dtype, values.numel() }));
        byte* data = (byte*)Kernels.TensorMemory.Address(values);
        for (long at = 0; at < bytes; at += int.MaxValue)
        {
            hash.Append(new ReadOnlySpan<byte>(data + at, (int)Math.Min(int.MaxValue, bytes - at)));
        }
    }
}
