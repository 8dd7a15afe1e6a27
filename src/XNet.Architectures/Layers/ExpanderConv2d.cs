using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A 2-D convolution whose channel connections follow an <see cref="ExpanderGraph"/>: output channel o sees only its
/// D input channels, each through a full k x k kernel.
/// </summary>
/// <remarks>
/// Parameters are compact, <c>weight</c> (C_out, D, k, k), so the parameter count is the effective count and weight
/// decay never touches absent connections; the graph is the int64 buffer <c>indices</c> (C_out, D), saved with the
/// weights. The reference implementation scatters the compact weight into a dense (C_out, C_in, k, k) weight and runs a
/// dense convolution; <see cref="Execution"/> selects a faster exact form (<see cref="ExpanderExecution"/>): by default
/// the direct sparse kernel for sparse float32 layers on the CPU, otherwise the gather + grouped convolution when the
/// graph has the block structure of <see cref="ExpanderGraph.CreateStructured"/>, and the reference for the rest and on
/// a GPU. This class holds the parameters and the graph and dispatches; <see cref="ExpanderExecutionPolicy"/> makes
/// Auto's choice and <see cref="ExpanderConvForms"/> runs the forms.
/// </remarks>
public sealed class ExpanderConv2d : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter weight;
    private readonly Tensor indices;
    private readonly Parameter? bias;
    private readonly long[] stride;
    private readonly long[] padding;
    private readonly ExpanderConvForms forms;
    private ExpanderExecution execution = ExpanderExecution.Auto;

    /// <summary>Creates the layer with a graph drawn from (<paramref name="seed"/>, <paramref name="layerPath"/>).</summary>
    /// <param name="layerPath">The layer's path in its model; names the layer in errors and seeds its graph.</param>
    /// <param name="inputChannels">C_in.</param>
    /// <param name="outputChannels">C_out.</param>
    /// <param name="kernelSize">Square kernel size k.</param>
    /// <param name="compression">Compression e; D = max(1, floor(C_in / e)).</param>
    /// <param name="seed">The model seed.</param>
    /// <param name="stride">Convolution stride.</param>
    /// <param name="padding">Zero padding on each side.</param>
    /// <param name="bias">Whether to add a bias (off by default, as in the paper).</param>
    public ExpanderConv2d(string layerPath, int inputChannels, int outputChannels, int kernelSize, double compression,
        long seed, int stride = 1, int padding = 0, bool bias = false)
        : this(ExpanderGraph.Create(layerPath, inputChannels, outputChannels, compression, seed), kernelSize, stride, padding, bias)
    {
    }

    /// <summary>Creates the layer over a given graph.</summary>
    public ExpanderConv2d(ExpanderGraph graph, int kernelSize, int stride = 1, int padding = 0, bool bias = false)
        : base(nameof(ExpanderConv2d))
    {
        if (kernelSize < 1 || stride < 1 || padding < 0)
        {
            throw new ArgumentException(
                $"Layer '{graph.LayerPath}': kernel size {kernelSize} and stride {stride} must be positive, padding {padding} not negative.");
        }

        LayerPath = graph.LayerPath;
        InputChannels = graph.InputChannels;
        OutputChannels = graph.OutputChannels;
        Degree = graph.Degree;
        KernelSize = kernelSize;
        this.stride = new long[] { stride, stride };
        this.padding = new long[] { padding, padding };

        // Kaiming-normal with fan_out = C_out * k * k, drawn for the compact weight (the paper's reference code's init, without its dense waste).
        double std = Math.Sqrt(2.0 / (OutputChannels * kernelSize * kernelSize));
        // nn.init takes plain doubles: an implicit torch Scalar here (randn(...) * std) could be freed by its finalizer
        // while libtorch still reads it, which showed up as a rare native "Unknown scalar type" error.
        var initial = empty(OutputChannels, Degree, kernelSize, kernelSize);
        nn.init.normal_(initial, 0, std);
        this.weight = new Parameter(initial);
        this.indices = graph.ToIndexTensor();
        this.bias = bias ? new Parameter(zeros(OutputChannels)) : null;
        register_parameter(nameof(weight), this.weight);
        register_buffer(nameof(indices), this.indices);
        if (this.bias is not null)
        {
            register_parameter(nameof(bias), this.bias);
        }

        forms = new ExpanderConvForms(this);
    }

    /// <summary>The layer's path in its model.</summary>
    public string LayerPath { get; }

    /// <summary>C_in.</summary>
    public int InputChannels { get; }

    /// <summary>C_out.</summary>
    public int OutputChannels { get; }

    /// <summary>Inputs per output channel, D.</summary>
    public int Degree { get; }

    /// <summary>Square kernel size k.</summary>
    public int KernelSize { get; }

    /// <summary>Stride (square).</summary>
    public int Stride => (int)stride[0];

    /// <summary>Padding (square).</summary>
    public int Padding => (int)padding[0];

    /// <summary>The compact weight, (C_out, D, k, k).</summary>
    public Parameter Weight => weight;

    /// <summary>The optional bias.</summary>
    public Parameter? Bias => bias;

    /// <summary>The <c>indices</c> buffer, (C_out, D).</summary>
    internal Tensor Indices => indices;

    /// <summary>The graph as currently held in the <c>indices</c> buffer (after loading weights, the saved graph).</summary>
    public ExpanderGraph Graph
    {
        get
        {
            using var host = indices.cpu(); // disposed here, not left to the finalizer thread
            return ExpanderGraph.FromIndices(LayerPath, InputChannels, OutputChannels, host.data<long>().ToArray());
        }
    }

    /// <summary>The equivalent dense weight, (C_out, C_in, k, k), zero where there is no connection; differentiable.</summary>
    public Tensor DenseWeight()
    {
        using var scope = NewDisposeScope(); // holds the intermediates (see forward)
        var index = indices.view(OutputChannels, Degree, 1, 1).expand(OutputChannels, Degree, KernelSize, KernelSize);
        return zeros(new long[] { OutputChannels, InputChannels, KernelSize, KernelSize }, weight.dtype, weight.device)
            .scatter_(1, index, weight).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How the forward pass runs (<see cref="ExpanderExecution.Auto"/> by default); all forms are exact.
    /// </summary>
    /// <exception cref="ArgumentException">When <see cref="ExpanderExecution.GatherMatmul"/> is chosen for a layer that is not 1x1 without padding.</exception>
    public ExpanderExecution Execution
    {
        get => execution;
        set
        {
            if (value == ExpanderExecution.GatherMatmul && (KernelSize != 1 || Padding != 0))
            {
                throw new ArgumentException(
                    $"Layer '{LayerPath}': the GatherMatmul execution needs a 1x1 kernel without padding (kernel {KernelSize}, padding {Padding}).",
                    nameof(value));
            }

            execution = value;
        }
    }

    /// <summary>The form <see cref="Execution"/> resolves to for the graph now held in <c>indices</c> (<see cref="ExpanderExecutionPolicy"/>).</summary>
    public ExpanderExecution ResolvedExecution => ExpanderExecutionPolicy.Resolve(execution, this, () => forms.Blocks);

    /// <inheritdoc />
    /// <remarks>
    /// Runs in a dispose scope of its own, so that the layer is safe outside a model's scope: the scope holds every
    /// intermediate tensor until the pass returns, where an unreferenced one could be freed by the finalizer thread while
    /// libtorch still reads it.
    /// </remarks>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        bool share = SharesNextInput;
        (SharesNextInput, SharedInput) = (false, null);
        var execution = ResolvedExecution;
        if (share && RunsDirectSparse(input) && forms.DirectSparseSharingInput(input) is var (shared, sharedInput))
        {
            SharedInput = sharedInput.DetachFromDisposeScope(); // the taker's (TakeSharedInput)
            return shared.MoveToOuterDisposeScope();
        }

        var output = execution switch
        {
            ExpanderExecution.BlockGrouped => forms.BlockGrouped(input),
            ExpanderExecution.GatherMatmul => forms.GatherMatmul(input),
            ExpanderExecution.DirectSparse when RunsDirectSparse(input) => forms.DirectSparse(input),
            _ => forms.Reference(input),
        };
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Asks the next forward pass to return its input from the convolution's autograd node as well
    /// (<see cref="SharedInput"/>), for a residual block's identity shortcut, so that the input's two gradients are summed
    /// in the convolution's backward pass (<see cref="SharedInputSparseConvFunction"/>). A request rather than an
    /// argument, so that the pass still runs through <c>call</c> and its hooks fire; the pass clears it.
    /// </summary>
    internal bool SharesNextInput { get; set; }

    /// <summary>
    /// The input as the last forward pass's autograd node returned it, when <see cref="SharesNextInput"/> asked for it and
    /// the pass could (the direct kernel, no bias, an input gradient that adds: <see cref="SparseConvPlan.InputGradientAdds"/>);
    /// otherwise null. Taking it clears it; the taker owns it (it belongs to no dispose scope).
    /// </summary>
    internal Tensor? TakeSharedInput()
    {
        var input = SharedInput;
        SharedInput = null;
        return input;
    }

    private Tensor? SharedInput { get; set; }

    /// <summary>
    /// Inference through the direct kernel (where <see cref="RunsDirectSparse"/>) with <paramref name="foldedWeight"/> (the
    /// compact weight with an evaluation-mode batch norm's multipliers in it) and <paramref name="epilogue"/> applied to
    /// each output plane (the batch norm's shift, a residual and an activation folded in).
    /// </summary>
    internal Tensor DirectSparseFolded(Tensor input, Tensor foldedWeight, PlaneEpilogue epilogue) =>
        forms.DirectSparseFolded(input, foldedWeight, epilogue);

    /// <summary>The direct kernel's plan for <paramref name="input"/>'s size.</summary>
    internal SparseConvPlan DirectPlanFor(Tensor input) => forms.PlanFor(input);

    /// <summary>
    /// The direct kernel's plan for a training unit that runs this convolution and its batch norm as one autograd function
    /// (<see cref="ConvNormFunction"/>): where the direct kernel runs for <paramref name="input"/>, the layer has no bias
    /// and no forward hooks (the unit's function does not run this layer's call, so hooks would not fire), and the plan's
    /// gradients can follow a chunked output gradient (<see cref="SparseConvPlan.RunsUnitGradients"/>); otherwise null.
    /// </summary>
    internal SparseConvPlan? UnitPlanFor(Tensor input) =>
        bias is null && pre_hooks.Count + post_hooks.Count + module_pre_hooks.Count + module_post_hooks.Count == 0 && RunsDirectSparse(input) &&
        forms.PlanFor(input) is { RunsUnitGradients: true } plan ? plan : null;

    /// <summary>Whether <see cref="forward"/> runs the direct kernel for <paramref name="input"/>.</summary>
    internal bool RunsDirectSparse(Tensor input) =>
        ResolvedExecution == ExpanderExecution.DirectSparse && forms.RunsDirectSparse(input) &&
        (execution != ExpanderExecution.Auto || ExpanderExecutionPolicy.PlaneSuitsDirectKernel(this, input));

    /// <summary>The reference forward pass: the scattered dense weight and one dense convolution.</summary>
    public Tensor ReferenceForward(Tensor input) => forms.Reference(input);

    /// <summary>The exact equivalent of <see cref="forward"/> as a plain convolution, in either export form.</summary>
    internal ConvolutionSpec ToConvolutionSpec(ExpanderConvForm form, string path)
    {
        float[]? biasValues = bias is null ? null : OnnxExport.Data(bias);
        if (form == ExpanderConvForm.GatherGroupedConv)
        {
            // Each block of outputs convolves its D gathered inputs: gather (G x D) channels, then G groups of D
            // (G = C_out for a graph without block structure, such as the paper's).
            var graph = Graph;
            return new ConvolutionSpec(path, OnnxExport.Data(weight), new long[] { OutputChannels, Degree, KernelSize, KernelSize },
                biasValues, stride.ToArray(), padding.ToArray(), graph.BlockCount, graph.BlockInputs());
        }

        using var noGrad = no_grad();
        using var dense = DenseWeight();
        return new ConvolutionSpec(path, OnnxExport.Data(dense), new long[] { OutputChannels, InputChannels, KernelSize, KernelSize },
            biasValues, stride.ToArray(), padding.ToArray(), 1, null);
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path) =>
        OnnxExport.ConvBatchNorm(graph, this, null, input, path, null);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            forms.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"ExpanderConv2d({InputChannels}, {OutputChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}, degree={Degree}, bias={bias is not null})";
}
