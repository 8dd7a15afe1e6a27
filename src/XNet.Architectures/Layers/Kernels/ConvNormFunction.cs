using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// A training-mode convolution unit as one autograd function: the direct kernel's convolution, then the vectorised batch
/// norm and activation (optionally after adding a residual), as <see cref="SparseConvFunction"/> followed by
/// <see cref="BatchNormFunction"/> compute them, bit for bit. Its backward pass computes the batch norm's input gradient a
/// chunk of batch items at a time, where the convolution's weight and input gradients read it
/// (<see cref="SparseConvPlan.UnitGradients"/>), instead of writing a whole activation-sized gradient between the two.
/// </summary>
/// <remarks>
/// Arguments to <c>apply</c>: input (N, C_in, H, W), compact convolution weight (C_out, D, 3, 3), batch norm weight and bias
/// (C_out), the plan (one where <see cref="SparseConvPlan.RunsUnitGradients"/>), the thread count, eps, the
/// <see cref="Activation"/>, a <see cref="double"/>[2][] that receives the batch mean and biased variance, whether to
/// return the input too (as <see cref="SharedInputSparseConvFunction"/> does, for a residual block's identity shortcut,
/// whose gradient is then added to the input gradient), and optionally a residual (N, C_out, H', W') added before the
/// activation. Outputs: the unit's output, and with the input shared, the input (an alias of it).
/// </remarks>
internal sealed class ConvNormFunction : MultiTensorFunction<ConvNormFunction>
{
    private const string PlanKey = "plan", ThreadsKey = "threads", StateKey = "batch norm", InputGradientKey = "input needs a gradient";
    private const string SharesKey = "shares input";

    /// <inheritdoc />
    public override string Name => nameof(ConvNormFunction);

    /// <inheritdoc />
    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var (input, weight, normWeight, normBias) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
        var (plan, threads, eps, activation) = ((SparseConvPlan)vars[4], (int)vars[5], (double)vars[6], (Activation)vars[7]);
        var (statistics, shares, residual) = ((double[][])vars[8], (bool)vars[9], vars.Length > 10 ? (Tensor)vars[10] : null);
        var laidOut = plan.LayOut(input, threads);
        var convolved = plan.Forward(laidOut, weight, threads);
        var (output, state) = BatchNormPasses.Forward(convolved, normWeight, normBias, eps, activation, statistics, residual);
        var saved = new List<Tensor> { laidOut, weight, convolved };
        if (residual is not null)
        {
            saved.Add(residual);
        }

        ctx.save_for_backward(saved);
        ctx.save_data(PlanKey, plan);
        ctx.save_data(ThreadsKey, threads);
        ctx.save_data(StateKey, state);
        ctx.save_data(InputGradientKey, input.requires_grad);
        ctx.save_data(SharesKey, shares);
        return shares ? new List<Tensor> { output, input.alias() } : new List<Tensor> { output };
    }

    /// <inheritdoc />
    public override unsafe List<Tensor> backward(AutogradContext ctx, List<Tensor> grad_outputs)
    {
        var saved = ctx.get_saved_variables();
        var (laidOut, weight, convolved, residual) = (saved[0], saved[1], saved[2], saved.Count > 3 ? saved[3] : null);
        var (plan, threads, state) = ((SparseConvPlan)ctx.get_data(PlanKey), (int)ctx.get_data(ThreadsKey), (BatchNormState)ctx.get_data(StateKey));
        using var upstream = grad_outputs[0].contiguous();
        // TorchSharp materialises an output's missing gradient as zeros, so the shared input's is always there.
        using var added = (bool)ctx.get_data(SharesKey) ? grad_outputs[1].contiguous() : null;
        var gated = residual is null ? null : empty_like(convolved);
        var norm = BatchNormPasses.Backward(convolved, upstream, state, residual, gated);
        var (inputGradient, weightGradient) = plan.UnitGradients(laidOut, weight, threads,
            (into, first, count) => norm.InputGradient(into, first, count, threads: 1), (bool)ctx.get_data(InputGradientKey), added);
        var gradients = new List<Tensor>
        {
            inputGradient!, weightGradient, tensor(norm.Weight), tensor(norm.Bias), null!, null!, null!, null!, null!, null!,
        };
        if (gated is not null)
        {
            gradients.Add(gated);
        }

        saved.ForEach(t => t.Dispose());
        return GradientHandOver.Return(gradients, grad_outputs.ToArray());
    }
}
