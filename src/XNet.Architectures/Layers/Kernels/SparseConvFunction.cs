using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The sparse convolution as an autograd function: forward and both gradients run through <see cref="SparseConvPlan"/>,
/// so training never materialises the dense weight.
/// </summary>
/// <remarks>Arguments to <c>apply</c>: input (N, C_in, H, W), compact weight (C_out, D, k, k), the plan, the thread count.</remarks>
internal sealed class SparseConvFunction : SingleTensorFunction<SparseConvFunction>
{
    /// <inheritdoc />
    public override string Name => nameof(SparseConvFunction);

    /// <inheritdoc />
    public override Tensor forward(AutogradContext ctx, params object[] vars) => SparseConvPasses.Forward(ctx, vars);

    /// <inheritdoc />
    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output) => SparseConvPasses.Backward(ctx, grad_output, null);
}

/// <summary>
/// <see cref="SparseConvFunction"/> that also returns its input, as a second output for a residual block's identity
/// shortcut. The input's two gradients (the convolution's and the shortcut's) then both arrive in this function's
/// backward pass, which adds the shortcut's to each plane of the input gradient as the kernel finishes it, where
/// autograd would add the two in a pass of its own over memory (a read of two activations and a write of one per block:
/// about 86 MB a training step of x-resnet-20-4 at batch 128, whose step it shortened by 2-3 %). The sum has the same bits.
/// </summary>
/// <remarks>
/// Arguments to <c>apply</c> as for <see cref="SparseConvFunction"/>; only for a plan whose input gradient adds
/// (<see cref="SparseConvPlan.InputGradientAdds"/>). Outputs: the convolution, and the input (an alias of it).
/// </remarks>
internal sealed class SharedInputSparseConvFunction : MultiTensorFunction<SharedInputSparseConvFunction>
{
    /// <inheritdoc />
    public override string Name => nameof(SharedInputSparseConvFunction);

    /// <inheritdoc />
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars) =>
        new() { SparseConvPasses.Forward(ctx, vars), ((Tensor)vars[0]).alias() };

    /// <inheritdoc />
    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        // TorchSharp materialises an output's missing gradient as zeros, so the shortcut's is always there.
        return SparseConvPasses.Backward(ctx, grad_outputs[0], grad_outputs[1]);
    }
}

/// <summary>The forward and backward passes the sparse convolution's autograd functions share.</summary>
internal static class SparseConvPasses
{
    private const string PlanKey = "plan", ThreadsKey = "threads", InputGradientKey = "input needs a gradient";

    /// <summary>The convolution of vars[0] (input) with vars[1] (compact weight) by the plan vars[2] on vars[3] threads.</summary>
    public static Tensor Forward(AutogradContext ctx, object[] vars)
    {
        var (input, weight, plan, threads) = ((Tensor)vars[0], (Tensor)vars[1], (SparseConvPlan)vars[2], (int)vars[3]);
        var laidOut = plan.LayOut(input, threads);
        // The laid-out input is what the weight gradient reads: the input itself for unit-stride 3x3 layers, otherwise a
        // padded (and for strides above 1, phased) copy, kept instead of the input at the price of one activation-sized
        // buffer per layer until the backward pass.
        ctx.save_for_backward(new List<Tensor> { laidOut, weight });
        ctx.save_data(PlanKey, plan);
        ctx.save_data(ThreadsKey, threads);
        ctx.save_data(InputGradientKey, input.requires_grad);
        return plan.Forward(laidOut, weight, threads);
    }

    /// <summary>
    /// The input gradient (plus <paramref name="inputGradientAdded"/>, the input's gradient from its other reader, when not
    /// null) and the weight gradient, for the apply arguments' positions.
    /// </summary>
    public static List<Tensor> Backward(AutogradContext ctx, Tensor upstreamGradient, Tensor? inputGradientAdded)
    {
        var saved = ctx.get_saved_variables();
        var plan = (SparseConvPlan)ctx.get_data(PlanKey);
        int threads = (int)ctx.get_data(ThreadsKey);
        using var upstream = upstreamGradient.contiguous();
        using var added = inputGradientAdded?.contiguous();
        var inputGradient = (bool)ctx.get_data(InputGradientKey) ? plan.InputGradient(upstream, saved[1], threads, added) : null;
        var weightGradient = plan.WeightGradient(saved[0], upstream, threads);
        saved.ForEach(t => t.Dispose());
        return GradientHandOver.Return(new List<Tensor> { inputGradient!, weightGradient, null!, null! }, upstreamGradient, inputGradientAdded);
    }
}
