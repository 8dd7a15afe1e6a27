using TorchSharp;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>Tensor additions whose scalar operands outlive the native call.</summary>
/// <remarks>
/// TorchSharp's <c>x + y</c> is <c>x.add(y, 1)</c> with a native scalar for the 1 that only the finalizer frees; a garbage
/// collection started by another thread (a data loader, a progress display, the host application) while libtorch runs the
/// addition can free it mid-call, and libtorch then stops in its "toFloat"/"toLong" check. The residual additions run on
/// every batch, as do the batch norms' counters, so they pass a scalar that is never collected.
/// </remarks>
internal static class TensorSum
{
    private static readonly Scalar One = 1;

    /// <summary><paramref name="x"/> + <paramref name="y"/>, broadcasting as <c>+</c> does.</summary>
    public static Tensor Plus(this Tensor x, Tensor y) => x.add(y, One);

    /// <summary>Adds <paramref name="y"/> to <paramref name="x"/> in place.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y) => x.add_(y, One);

    /// <summary>Adds 1 to <paramref name="counter"/> in place (a batch norm's <c>num_batches_tracked</c>).</summary>
    public static void Increment(this Tensor counter) => counter.add_(One, One);
}
