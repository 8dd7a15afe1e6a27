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
    private const string PlanKey = "plan", ThreadsKey = "threads", InputGradientKey = "input needs a gradient";

    /// <inheritdoc />
    public override string Name => nameof(SparseConvFunction);

    /// <inheritdoc />
    public override Tensor forward(AutogradContext ctx, params object[] vars)
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

    /// <inheritdoc />
    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        var saved = ctx.get_saved_variables();
        var plan = (SparseConvPlan)ctx.get_data(PlanKey);
        int threads = (int)ctx.get_data(ThreadsKey);
        using var upstream = grad_output.contiguous();
        var inputGradient = (bool)ctx.get_data(InputGradientKey) ? plan.InputGradient(upstream, saved[1], threads) : null;
        var weightGradient = plan.WeightGradient(saved[0], upstream, threads);
        saved.ForEach(t => t.Dispose());
        return new List<Tensor> { inputGradient!, weightGradient, null!, null! };
    }
}
