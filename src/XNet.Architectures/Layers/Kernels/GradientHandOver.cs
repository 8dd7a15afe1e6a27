using static TorchSharp.torch;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The end of a custom autograd function's backward pass: hands its gradients to TorchSharp so that neither they nor the
/// gradients it received can be freed by a finalizer while libtorch still reads them.
/// </summary>
/// <remarks>
/// TorchSharp wraps the gradients it passes to <c>backward</c> in tensors that nothing else references, and copies the
/// gradients <c>backward</c> returns only after the managed call has returned (<c>CSharpNode::apply</c> then reads each
/// returned handle). Outside a dispose scope either tensor can be finalized in between: the garbage collector runs while
/// the thread is in native code, and a tensor's finalizer frees its handle. libtorch then reads freed memory ("tensor does
/// not have a device", or a segmentation fault). Measured on this project's CPU: a one-line custom function trained
/// outside any scope while another thread collects garbage crashed within 2 s, every time; with the hand-over it ran
/// 200,000 steps. Each thread keeps the gradients it handed over last until its next backward call (by then libtorch
/// has copied them, on the same thread) and disposes them there: at most one function's gradients per thread.
/// </remarks>
internal static class GradientHandOver
{
    [ThreadStatic]
    private static List<Tensor>? handedOver;

    /// <summary>
    /// Returns <paramref name="gradients"/> (nulls for the arguments without one), kept until this thread's next backward
    /// call. <paramref name="received"/> are the gradients the backward pass was given: passing them here keeps them
    /// reachable until the pass has computed its own.
    /// </summary>
    public static List<Tensor> Return(List<Tensor> gradients, params Tensor?[] received)
    {
        var previous = handedOver;
        handedOver = gradients;
        previous?.ForEach(gradient => gradient?.Dispose());
        GC.KeepAlive(received);
        return gradients;
    }
}
