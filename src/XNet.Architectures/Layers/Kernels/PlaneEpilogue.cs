using System.Numerics;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// What a forward kernel applies to each output plane once it is summed, while the plane is still in cache: a shift per
/// output channel, then an activation. With the weight scaled per output channel, it is an evaluation-mode batch norm and
/// its activation folded into the convolution (<see cref="Conv2dNormActivation"/>'s inference path).
/// </summary>
/// <param name="shift">The shift of each output channel.</param>
/// <param name="activation">The activation after it.</param>
internal sealed unsafe class PlaneEpilogue(float[] shift, Activation activation)
{
    /// <summary>Shifts and activates the <paramref name="length"/> values of output channel <paramref name="channel"/>'s plane in place.</summary>
    public void Apply(float* plane, int channel, int length)
    {
        var by = new Vector<float>(shift[channel]);
        var (low, high) = activation switch
        {
            Activation.ReLU => (0f, float.PositiveInfinity),
            Activation.ReLU6 => (0f, 6f),
            _ => (float.NegativeInfinity, float.PositiveInfinity),
        };
        var (lowest, highest) = (new Vector<float>(low), new Vector<float>(high));
        int i = 0;
        for (; i <= length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var value = Vector.Load(plane + i) + by;
            Vector.Store(activation == Activation.None ? value : Vector.Min(Vector.Max(value, lowest), highest), plane + i);
        }

        for (; i < length; i++)
        {
            float value = plane[i] + shift[channel];
            plane[i] = activation == Activation.None ? value : Math.Min(Math.Max(value, low), high);
        }
    }
}
