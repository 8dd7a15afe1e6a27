using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A convolution, a batch norm and an activation: the unit the model families are built from (torchvision's
/// <c>Conv2dNormActivation</c>, whose child names it keeps: <c>0</c> the convolution, <c>1</c> the BatchNorm2d).
/// </summary>
/// <remarks>
/// The batch norm runs through <see cref="TrainingBatchNorm"/>, so training on the CPU takes the vectorised kernel (with
/// the ReLU fused) wherever a model uses this unit; the export folds it into the convolution. The convolution runs
/// through <c>call</c>, so <see cref="ModelCost"/>'s hooks count it.
/// </remarks>
internal sealed class Conv2dNormActivation : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly nn.Module<Tensor, Tensor> conv;
    private readonly BatchNorm2d norm;
    private readonly Activation activation;
    private readonly object foldedGate = new();
    private FoldedWeights? folded;
    private Tensor? sharedInput;

    /// <summary>A k x k convolution that follows <paramref name="connectivity"/>, then batch norm and <paramref name="activation"/>.</summary>
    /// <param name="connectivity">The convolution's connectivity.</param>
    /// <param name="layerPath">Seeds the convolution's expander graph and names it in errors (the unit's path in its model).</param>
    /// <param name="inputChannels">C_in.</param>
    /// <param name="outputChannels">C_out.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="padding">Zero padding.</param>
    /// <param name="seed">The model seed.</param>
    /// <param name="activation">The activation after the batch norm.</param>
    public Conv2dNormActivation(Connectivity connectivity, string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed, Activation activation)
        : this(connectivity.Conv2d(layerPath, inputChannels, outputChannels, kernelSize, stride, padding, seed), outputChannels, activation)
    {
    }

    /// <summary>Follows <paramref name="conv"/> (a Conv2d or an ExpanderConv2d) with a new batch norm and <paramref name="activation"/>.</summary>
    /// <param name="conv">The convolution.</param>
    /// <param name="outputChannels">Its output channels, the batch norm's features.</param>
    /// <param name="activation">The activation after the batch norm.</param>
    public Conv2dNormActivation(nn.Module<Tensor, Tensor> conv, int outputChannels, Activation activation)
        : base(nameof(Conv2dNormActivation))
    {
        this.conv = conv;
        norm = nn.BatchNorm2d(outputChannels);
        this.activation = activation;
        register_module("0", conv);
        register_module("1", norm);
    }

    /// <summary>Registers nothing: the constructor registered the children under torchvision's names, which a parent's
    /// <c>RegisterComponents</c> would otherwise repeat under the field names.</summary>
    protected override void RegisterComponents()
    {
    }

    /// <summary>
    /// Whether a pass in evaluation mode without gradients folds the batch norm into the convolution
    /// (<see cref="InferenceFolding.FoldBatchNormsInInference{T}"/>). Off unless asked: a folded pass skips the convolution's
    /// own call, so forward hooks on the convolution do not fire in it.
    /// </summary>
    public bool FoldsInInference { get; set; }

    /// <summary>
    /// Whether training runs libtorch's batch norm, the addition and the activation one after another rather than the
    /// vectorised kernel (a ResNet's shortcut projection: the kernel rounds differently, and the family's documented
    /// results were trained with libtorch's there). Folded inference is the same either way.
    /// </summary>
    public bool KeepsLibtorchNorm { get; init; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return Forward(input, null, activation).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <paramref name="activation"/>(bn(conv(<paramref name="input"/>)) + <paramref name="residual"/>): with a residual
    /// block's shortcut as the residual (for a unit without an activation of its own), the block's addition and ReLU run
    /// in the batch norm's pass in training and in the convolution's in folded inference. Called directly rather than
    /// through <c>call</c>, so hooks on the unit itself do not fire (those on its convolution do, unless it folds).
    /// </summary>
    internal Tensor Forward(Tensor input, Tensor? residual, Activation activation)
    {
        if (residual is not null && this.activation != Activation.None)
        {
            throw new InvalidOperationException("A residual is added before the activation, so only a unit without its own activation takes one.");
        }

        if (FoldsFor(input))
        {
            return FoldedForward(input, residual, activation);
        }

        if (UnitPlanFor(input, residual) is { } plan)
        {
            return TrainedAsOne(input, residual, activation, plan);
        }

        var y = conv.call(input);
        return KeepsLibtorchNorm ? TrainingBatchNorm.Unfused(norm, y, activation, residual) : TrainingBatchNorm.Call(norm, y, activation, residual);
    }

    /// <summary>Whether a training pass over <paramref name="input"/> (without a residual) runs the unit as one autograd function.</summary>
    internal bool TrainsAsOne(Tensor input) => UnitPlanFor(input, null) is not null;

    /// <summary>
    /// The direct kernel's plan when a training pass over <paramref name="input"/> runs the unit as one autograd function
    /// (<see cref="ConvNormFunction"/>): with gradients, an expander convolution whose plan has unit gradients and that
    /// has no forward hooks (<see cref="ExpanderConv2d.UnitPlanFor"/>), and a batch norm on the vectorised path; otherwise null.
    /// </summary>
    private SparseConvPlan? UnitPlanFor(Tensor input, Tensor? residual)
    {
        if (KeepsLibtorchNorm || !training || !is_grad_enabled() || conv is not ExpanderConv2d expander || expander.UnitPlanFor(input) is not { } plan)
        {
            return null;
        }

        long[] output = { input.shape[0], plan.OutputChannels, plan.OutputHeight, plan.OutputWidth };
        return TrainingBatchNorm.RunsVectorised(norm, output, residual) ? plan : null;
    }

    /// <summary>
    /// The training pass as one autograd function: the convolution, the batch norm and the activation (after
    /// <paramref name="residual"/>), whose backward pass hands the batch norm's input gradient to the convolution's chunk by
    /// chunk. It does not run the convolution's own call, so it runs only for a convolution without forward hooks (those
    /// on the unit fire as ever). With <see cref="ExpanderConv2d.SharesNextInput"/> asked by <see cref="ForwardSharingInput"/>, the
    /// input comes back from the function too.
    /// </summary>
    private Tensor TrainedAsOne(Tensor input, Tensor? residual, Activation activation, SparseConvPlan plan)
    {
        var expander = (ExpanderConv2d)conv;
        bool share = expander.SharesNextInput && plan.InputGradientAdds;
        expander.SharesNextInput = false;
        var statistics = new double[2][];
        var arguments = new List<object> { input, expander.Weight, norm.weight!, norm.bias!, plan, get_num_threads(), norm.eps, activation, statistics, share };
        if (residual is not null)
        {
            arguments.Add(residual);
        }

        var outputs = ConvNormFunction.apply(arguments.ToArray());
        TrainingBatchNorm.Count(norm, statistics, outputs[0].shape);
        if (share)
        {
            sharedInput = outputs[1].DetachFromDisposeScope(); // the taker's (ForwardSharingInput)
        }

        return outputs[0];
    }

    /// <summary>
    /// <see cref="forward"/>, and <paramref name="input"/> as returned by the convolution's autograd node when it can
    /// return it (<see cref="ExpanderConv2d.SharesNextInput"/>), else <paramref name="input"/> itself: a residual block
    /// that adds that input back as its identity shortcut has the input's two gradients summed in the convolution's
    /// backward pass instead of in a pass of their own. A returned input other than <paramref name="input"/> belongs to
    /// no dispose scope: the caller disposes it (or attaches it to its scope).
    /// </summary>
    internal (Tensor Output, Tensor Input) ForwardSharingInput(Tensor input)
    {
        if (conv is not ExpanderConv2d expander || !is_grad_enabled())
        {
            return (call(input), input);
        }

        expander.SharesNextInput = true;
        try
        {
            var output = call(input);
            var shared = sharedInput ?? expander.TakeSharedInput();
            sharedInput = null;
            return (output, shared ?? input);
        }
        finally
        {
            expander.SharesNextInput = false; // in case the pass did not reach the convolution
        }
    }

    /// <summary>
    /// Whether a pass over <paramref name="input"/> folds the batch norm into the convolution: <see cref="FoldsInInference"/>
    /// in evaluation mode without gradients, on the CPU (on a GPU the folding's read-back of the statistics would cost more
    /// than the batch norm it saves), with running statistics, and a convolution that runs the direct kernel for this input
    /// or is a plain zero-padded Conv2d.
    /// </summary>
    private bool FoldsFor(Tensor input) =>
        FoldsInInference && !training && !is_grad_enabled() && input.device_type == DeviceType.CPU && norm.running_mean is not null &&
        norm.running_var is not null && conv switch
        {
            ExpanderConv2d expander => expander.RunsDirectSparse(input),
            Conv2d dense => dense.padding_mode == PaddingModes.Zeros && dense.padding_type is null && dense.padding is not null,
            _ => false,
        };

    /// <summary>
    /// Inference with the batch norm folded into the convolution (<see cref="FoldsFor"/>), as the ONNX export does: the
    /// weight scaled by gamma / sqrt(var + eps) per output channel, the rest a shift, then <paramref name="residual"/> added
    /// (a residual block's shortcut, for a unit without an activation of its own) and <paramref name="activation"/>, in the
    /// same pass (the direct kernel applies them to each output plane as it finishes it). One pass over the output instead
    /// of three to five (convolution, batch norm, addition, activation).
    /// </summary>
    private Tensor FoldedForward(Tensor input, Tensor? residual, Activation activation)
    {
        var folded = Folded();
        switch (conv)
        {
            case ExpanderConv2d expander:
                return expander.DirectSparseFolded(input, folded.Weight, new PlaneEpilogue(folded.Shift, activation, residual));
            case Conv2d dense:
                var y = nn.functional.conv2d(input, folded.Weight, folded.ShiftTensor, dense.stride, dense.padding, dense.dilation, dense.groups);
                if (residual is not null)
                {
                    y.PlusInPlace(residual);
                }

                if (activation == Activation.ReLU6)
                {
                    using Scalar low = 0f, high = 6f; // held until the call returns (see TensorSum)
                    return y.clamp_(low, high);
                }

                return activation == Activation.ReLU ? y.relu_() : y;
            default:
                throw new InvalidOperationException($"FoldsFor admits no {conv.GetType().Name}.");
        }
    }

    /// <summary>
    /// This unit's folded inference over <paramref name="input"/> as a step over raw memory (the plan, its forward
    /// weights and the epilogue with <paramref name="activation"/>, or the unit's own), for <see cref="ResidualRunInference"/>;
    /// null unless it folds through the direct kernel and the kernel runs over raw items (<see cref="SparseConvPlan.RunsOverItems"/>).
    /// </summary>
    internal FoldedStep? FoldedStepFor(Tensor input, Activation? activation = null)
    {
        if (conv is not ExpanderConv2d expander || !FoldsFor(input) || expander.DirectPlanFor(input) is not { RunsOverItems: true } plan)
        {
            return null;
        }

        var folded = Folded();
        return new FoldedStep(plan, plan.ForwardWeights(folded.Weight), new PlaneEpilogue(folded.Shift, activation ?? this.activation));
    }

    /// <summary>
    /// The batch norm folded into the convolution: the one made for an earlier batch while the values it was made from are
    /// unchanged (<see cref="FoldedWeights"/>), else a new one.
    /// </summary>
    private FoldedWeights Folded()
    {
        var (weight, bias) = conv switch
        {
            ExpanderConv2d expander => ((Tensor)expander.Weight, (Tensor?)expander.Bias),
            Conv2d dense => (dense.weight!, dense.bias),
            _ => throw new InvalidOperationException($"FoldsFor admits no {conv.GetType().Name}."),
        };
        var fingerprint = FoldedWeights.FingerprintOf(weight, bias, norm);
        lock (foldedGate)
        {
            if (folded?.Fingerprint != fingerprint)
            {
                // The one replaced is not disposed here: another thread may be scoring with it (see FoldedWeights).
                folded = FoldedWeights.Fold(fingerprint, weight, bias, norm, withShiftTensor: conv is Conv2d);
            }

            return folded;
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            folded?.Dispose();
            folded = null;
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.ConvBatchNorm(graph, conv, norm, input, OnnxExport.Child(path, "0"), OnnxExport.Child(path, "1"));
        return activation switch
        {
            Activation.ReLU => graph.Relu(x),
            Activation.ReLU6 => graph.Clip(x, 0, 6),
            _ => x,
        };
    }
}

/// <summary>Switches the batch-norm folding of a model's conv units for inference on or off.</summary>
public static class InferenceFolding
{
    /// <summary>
    /// Lets every conv unit (convolution, batch norm, activation) in <paramref name="model"/> fold its batch norm into its
    /// convolution whenever it runs on the CPU in evaluation mode without gradients, as the ONNX export does: the direct
    /// kernel applies the shift and the activation to each output plane as it finishes it, a dense convolution runs with
    /// the folded weight and bias. The same scores within float rounding, one pass over each output instead of three.
    /// Folded passes skip the convolutions' own calls, so forward hooks registered on those convolutions do not fire in
    /// them; with gradients on (<c>torch.enable_grad()</c>) the units run unfolded. The trainer and ML.NET scoring turn
    /// it on for the models they own.
    /// </summary>
    /// <returns><paramref name="model"/>.</returns>
    public static T FoldBatchNormsInInference<T>(this T model, bool fold = true)
        where T : nn.Module
    {
        foreach (var unit in model.modules().Prepend(model).OfType<Conv2dNormActivation>()) // TorchSharp's modules() leaves out the model itself
        {
            unit.FoldsInInference = fold;
        }

        return model;
    }
}
