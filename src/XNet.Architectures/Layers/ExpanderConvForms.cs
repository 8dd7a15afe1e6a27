using TorchSharp;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// The exact forms an <see cref="ExpanderConv2d"/>'s forward pass runs in (<see cref="ExpanderExecution"/>), with what they
/// derive from the layer's graph: the grouped form's block count and gathered channels, the direct kernel's plan.
/// </summary>
/// <remarks>
/// That state is rebuilt when the <c>indices</c> buffer changes (loading a state dict copies into it), so every form
/// follows the graph the layer holds now. The forward forms run inside the layer's dispose scope
/// (<see cref="ExpanderConv2d.forward"/>), which holds their intermediates.
/// </remarks>
internal sealed class ExpanderConvForms : IDisposable
{
    private readonly ExpanderConv2d layer;
    private Tensor? planIndices;
    private Tensor? planGather;
    private int planBlocks;
    private SparseConvPlan? sparsePlan;

    /// <summary>The forms of <paramref name="layer"/>.</summary>
    public ExpanderConvForms(ExpanderConv2d layer) => this.layer = layer;

    /// <summary>
    /// The block count G of the graph now held in <c>indices</c> (<see cref="ExpanderGraph.BlockCount"/>); reads the graph
    /// back from the layer's device when it changed.
    /// </summary>
    public int Blocks => Plan();

    /// <summary>The reference form: the scattered dense weight and one dense convolution.</summary>
    public Tensor Reference(Tensor input)
    {
        using var dense = layer.DenseWeight();
        return nn.functional.conv2d(input, dense, layer.Bias, Strides, Pads);
    }

    /// <summary>A gather of the G blocks' input channels and one convolution with G groups over the compact weight.</summary>
    public Tensor BlockGrouped(Tensor input)
    {
        int blocks = Plan();
        var gathered = input.index_select(1, planGather!);
        return nn.functional.conv2d(gathered, layer.Weight, layer.Bias, Strides, Pads, groups: blocks);
    }

    /// <summary>For a 1x1 layer without padding: a gather of every output's D inputs and a batched product with the compact weight.</summary>
    public Tensor GatherMatmul(Tensor input)
    {
        int stride = layer.Stride;
        var x = stride == 1 ? input : input.slice(2, 0, input.shape[2], stride).slice(3, 0, input.shape[3], stride);
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var columns = x.transpose(0, 1).reshape(layer.InputChannels, n * h * w);
        var gathered = columns.index_select(0, layer.Indices.view(-1)).view(layer.OutputChannels, layer.Degree, n * h * w);
        var y = bmm(layer.Weight.view(layer.OutputChannels, 1, layer.Degree), gathered)
            .view(layer.OutputChannels, n, h, w).transpose(0, 1).contiguous();
        if (layer.Bias is not null)
        {
            y = y.Plus(layer.Bias.view(1, layer.OutputChannels, 1, 1));
        }

        return y;
    }

    /// <summary>Whether the vectorised kernels can take this input (float32 on a CPU with AVX2 + FMA); otherwise the reference runs.</summary>
    public bool RunsDirectSparse(Tensor input) => SparseCorrelation.CanRun(input) && SparseCorrelation.CanRun(layer.Weight);

    /// <summary>The direct sparse kernel (<see cref="SparseConvFunction"/>) over the compact weight.</summary>
    public Tensor DirectSparse(Tensor input)
    {
        var output = SparseConvFunction.apply(input, layer.Weight, PlanFor(input), torch.get_num_threads());
        return layer.Bias is null ? output : output.Plus(layer.Bias.view(1, layer.OutputChannels, 1, 1));
    }

    /// <summary>
    /// <see cref="DirectSparse"/> for a layer without a bias, returning its input too as the second output of the
    /// convolution's autograd node (<see cref="SharedInputSparseConvFunction"/>), for a residual block's identity
    /// shortcut; null where the plan's input gradient cannot add the shortcut's (<see cref="SparseConvPlan.InputGradientAdds"/>).
    /// </summary>
    public (Tensor Output, Tensor Input)? DirectSparseSharingInput(Tensor input)
    {
        var plan = PlanFor(input);
        if (layer.Bias is not null || !plan.InputGradientAdds)
        {
            return null;
        }

        var outputs = SharedInputSparseConvFunction.apply(input, layer.Weight, plan, torch.get_num_threads());
        return (outputs[0], outputs[1]);
    }

    /// <summary>
    /// Inference through the direct kernel, without autograd: <paramref name="foldedWeight"/> (the compact weight with an
    /// evaluation-mode batch norm's multipliers in it) and <paramref name="epilogue"/> applied to each output plane as it is
    /// finished (the batch norm's shift and the activation; the caller folds the layer's own bias into the shift).
    /// </summary>
    public Tensor DirectSparseFolded(Tensor input, Tensor foldedWeight, PlaneEpilogue epilogue)
    {
        using var scope = NewDisposeScope();
        var plan = PlanFor(input);
        int threads = torch.get_num_threads();
        return plan.Forward(plan.LayOut(input, threads), foldedWeight, threads, epilogue).MoveToOuterDisposeScope();
    }

    /// <summary>The direct kernel's plan for <paramref name="input"/>'s size, built once per size (and again after the graph changes).</summary>
    public SparseConvPlan PlanFor(Tensor input)
    {
        int inputChannels = layer.InputChannels, kernel = layer.KernelSize, padding = layer.Padding;
        if (input.dim() != 4 || input.shape[1] != inputChannels)
        {
            throw new ArgumentException(
                $"Layer '{layer.LayerPath}' expects input (N, {inputChannels}, H, W), got ({string.Join(", ", input.shape)}).", nameof(input));
        }

        long height = input.shape[2], width = input.shape[3];
        if (height + 2 * padding < kernel || width + 2 * padding < kernel)
        {
            throw new ArgumentException(
                $"Layer '{layer.LayerPath}': input {height}x{width} with padding {padding} is smaller than the {kernel}x{kernel} kernel.",
                nameof(input));
        }

        Plan();
        var plan = sparsePlan;
        if (plan is null || !plan.Fits(height, width))
        {
            // The terms are plain arrays, no tensors.
            plan = new SparseConvPlan(planIndices!.data<long>().ToArray(), inputChannels, layer.OutputChannels, kernel, layer.Stride,
                padding, (int)height, (int)width);
            sparsePlan = plan;
        }

        return plan;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        planIndices?.Dispose();
        planGather?.Dispose();
    }

    private long[] Strides => new long[] { layer.Stride, layer.Stride };

    private long[] Pads => new long[] { layer.Padding, layer.Padding };

    /// <summary>The block count of the graph now in <c>indices</c>; recomputes what the forms derive from it when it changed.</summary>
    private int Plan()
    {
        var indices = layer.Indices;
        if (planIndices is not null && planIndices.device_type == indices.device_type && planIndices.device_index == indices.device_index)
        {
            // On the CPU the two buffers are compared in place: three operators and a read-back per layer and forward pass
            // cost more than the comparison itself.
            bool inPlace = indices.device_type == DeviceType.CPU && indices.dtype == ScalarType.Int64 && indices.is_contiguous() &&
                           planIndices.is_contiguous();
            bool unchanged = inPlace
                ? TensorMemory.Int64s(indices).SequenceEqual(TensorMemory.Int64s(planIndices))
                : SameValues(planIndices, indices);
            if (unchanged)
            {
                return planBlocks;
            }
        }

        using var scope = NewDisposeScope();

        var graph = layer.Graph;
        planBlocks = graph.BlockCount;
        sparsePlan = null;
        planIndices?.Dispose();
        planGather?.Dispose();
        using (no_grad())
        {
            planIndices = indices.detach().clone().DetachFromDisposeScope();
            planGather = tensor(graph.BlockInputs(), ScalarType.Int64).to(indices.device).DetachFromDisposeScope();
        }

        return planBlocks;
    }

    private static bool SameValues(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.eq(b).all().item<bool>();
    }
}
