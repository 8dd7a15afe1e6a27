using System.Numerics;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// What a forward kernel applies to each output plane once it is summed, while the plane is still in cache: a shift per
/// output channel, optionally the same plane of a residual tensor, then an activation. With the weight scaled per output
/// channel, it is an evaluation-mode batch norm and its activation folded into the convolution, and with the residual a
/// residual block's shortcut addition too (<see cref="Conv2dNormActivation"/>'s inference path).
/// </summary>
/// <param name="shift">The shift of each output channel.</param>
/// <param name="activation">The activation after it.</param>
/// <param name="residual">Added before the activation: a tensor of the output's shape, read at the output's offsets.</param>
internal sealed unsafe class PlaneEpilogue(float[] shift, Activation activation, Tensor? residual = null)
{
    private float* output, added;

    /// <summary>Binds the epilogue to the output the kernel writes, so that each plane finds its residual at the same offset.</summary>
    public void Bind(Tensor output)
    {
        this.output = TensorMemory.Floats(output);
        if (residual is null)
        {
            return;
        }

        if (!residual.shape.SequenceEqual(output.shape) || residual.dtype != ScalarType.Float32 || !residual.is_contiguous())
        {
            throw new ArgumentException(
                $"The residual ({string.Join(", ", residual.shape)}, {residual.dtype}) must be a contiguous float32 tensor of the output's shape ({string.Join(", ", output.shape)}).",
                nameof(residual));
        }

        added = TensorMemory.Floats(residual);
    }

    /// <summary>
    /// A copy of this epilogue's shift and activation bound to raw memory: planes written at <paramref name="into"/> + k
    /// take their residual from <paramref name="residualAt"/> + k (none when null). For a kernel run over part of a batch
    /// (<see cref="ResidualRunInference"/>); the constructor's residual tensor is not used.
    /// </summary>
    public PlaneEpilogue At(float* into, float* residualAt) => new(shift, activation) { output = into, added = residualAt };

    /// <summary>Shifts, adds the residual to and activates the <paramref name="length"/> values of output channel <paramref name="channel"/>'s plane in place.</summary>
    public void Apply(float* plane, int channel, int length)
    {
        float* residual = added == null ? null : added + (plane - output);
        switch (activation)
        {
            case Activation.ReLU:
                Apply<Relu>(plane, residual, shift[channel], length);
                break;
            case Activation.ReLU6:
                Apply<Relu6>(plane, residual, shift[channel], length);
                break;
            default:
                Apply<Identity>(plane, residual, shift[channel], length);
                break;
        }
    }

    /// <summary>
    /// <see cref="Apply(float*, int, int)"/> with the activation a type argument and a loop each with and without a
    /// residual: with the choices made inside one loop, x-resnet-20-4's scoring ran about 5 % slower (AVX2, 2026-12-07).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // called per plane from the kernels' tasks: optimised from the first call
    private static void Apply<TActivation>(float* plane, float* residual, float shift, int length)
        where TActivation : struct, IActivation
    {
        var by = new Vector<float>(shift);
        int i = 0, lanes = Vector<float>.Count;
        if (residual == null)
        {
            for (; i <= length - lanes; i += lanes)
            {
                Vector.Store(TActivation.Apply(Vector.Load(plane + i) + by), plane + i);
            }

            for (; i < length; i++)
            {
                plane[i] = TActivation.Apply(plane[i] + shift);
            }

            return;
        }

        for (; i <= length - lanes; i += lanes)
        {
            Vector.Store(TActivation.Apply(Vector.Load(plane + i) + by + Vector.Load(residual + i)), plane + i);
        }

        for (; i < length; i++)
        {
            plane[i] = TActivation.Apply(plane[i] + shift + residual[i]);
        }
    }
}
