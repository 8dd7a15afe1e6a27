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
/// a GPU.
/// </remarks>
public sealed class ExpanderConv2d : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter weight;
    private readonly Tensor indices;
    private readonly Parameter? bias;
    private readonly long[] stride;
    private readonly long[] padding;
    private ExpanderExecution execution = ExpanderExecution.Auto;
    private Tensor? planIndices;
    private Tensor? planGather;
    private int planBlocks;
    private SparseConvPlan? sparsePlan;

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

    /// <summary>The graph as currently held in the <c>indices</c> buffer (after loading weights, the saved graph).</summary>
    public ExpanderGraph Graph =>
        ExpanderGraph.FromIndices(LayerPath, InputChannels, OutputChannels, indices.cpu().data<long>().ToArray());

    /// <summary>The equivalent dense weight, (C_out, C_in, k, k), zero where there is no connection; differentiable.</summary>
    public Tensor DenseWeight()
    {
        using var index = indices.view(OutputChannels, Degree, 1, 1).expand(OutputChannels, Degree, KernelSize, KernelSize);
        return zeros(new long[] { OutputChannels, InputChannels, KernelSize, KernelSize }, weight.dtype, weight.device)
            .scatter_(1, index, weight);
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

    /// <summary>The form <see cref="Execution"/> resolves to for the graph now held in <c>indices</c>.</summary>
    public ExpanderExecution ResolvedExecution => Resolve(out _);

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Resolve(out int blocks) switch
    {
        ExpanderExecution.BlockGrouped => BlockGroupedForward(input, blocks),
        ExpanderExecution.GatherMatmul => GatherMatmulForward(input),
        ExpanderExecution.DirectSparse when RunsDirectSparse(input) => DirectSparseForward(input),
        _ => ReferenceForward(input),
    };

    /// <summary>The reference forward pass: the scattered dense weight and one dense convolution.</summary>
    public Tensor ReferenceForward(Tensor input)
    {
        using var dense = DenseWeight();
        return nn.functional.conv2d(input, dense, bias, stride, padding);
    }

    private ExpanderExecution Resolve(out int blocks)
    {
        if (execution == ExpanderExecution.Auto && weight.device_type != DeviceType.CPU)
        {
            // Off the CPU the reference form runs (the vendor's dense convolution on the scattered weight): checking the
            // graph's block structure would read the device's indices back, one synchronisation per layer and pass.
            blocks = OutputChannels;
            return ExpanderExecution.Reference;
        }

        blocks = execution is ExpanderExecution.Auto or ExpanderExecution.BlockGrouped or ExpanderExecution.DirectSparse
            ? Plan()
            : OutputChannels;
        if (execution != ExpanderExecution.Auto)
        {
            return execution;
        }

        // Measured on the CPU (docs/benchmarks.md): the direct kernel beats the dense, masked, reference and grouped forms
        // for k x k layers at density 1/4 and below and loses at 1/2; a 1x1 layer is a matrix product, which libtorch runs
        // well enough that the kernel needs density 1/8 to be as fast on wide layers. Otherwise (other dtypes) the grouped
        // form pays only for structured graphs.
        bool sparseEnough = KernelSize > 1 ? 4 * Degree <= InputChannels : 8 * Degree <= InputChannels;
        if (sparseEnough && SparseCorrelation.CanRun(weight))
        {
            return ExpanderExecution.DirectSparse;
        }

        return blocks < OutputChannels ? ExpanderExecution.BlockGrouped : ExpanderExecution.Reference;
    }

    private Tensor BlockGroupedForward(Tensor input, int blocks)
    {
        using var scope = NewDisposeScope();
        var gathered = input.index_select(1, planGather!);
        return nn.functional.conv2d(gathered, weight, bias, stride, padding, groups: blocks).MoveToOuterDisposeScope();
    }

    /// <summary>Whether the vectorised kernels can take this input (float32 on a CPU with AVX2 + FMA); otherwise the reference runs.</summary>
    private bool RunsDirectSparse(Tensor input) => SparseCorrelation.CanRun(input) && SparseCorrelation.CanRun(weight);

    private Tensor DirectSparseForward(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != InputChannels)
        {
            throw new ArgumentException(
                $"Layer '{LayerPath}' expects input (N, {InputChannels}, H, W), got ({string.Join(", ", input.shape)}).", nameof(input));
        }

        long height = input.shape[2], width = input.shape[3];
        if (height + 2 * Padding < KernelSize || width + 2 * Padding < KernelSize)
        {
            throw new ArgumentException(
                $"Layer '{LayerPath}': input {height}x{width} with padding {Padding} is smaller than the {KernelSize}x{KernelSize} kernel.",
                nameof(input));
        }

        var plan = sparsePlan;
        if (plan is null || !plan.Fits(height, width))
        {
            // Built once per input size (and again after the graph changes); the terms are plain arrays, no tensors.
            plan = new SparseConvPlan(planIndices!.data<long>().ToArray(), InputChannels, OutputChannels, KernelSize, Stride, Padding,
                (int)height, (int)width);
            sparsePlan = plan;
        }

        var output = SparseConvFunction.apply(input, weight, plan, torch.get_num_threads());
        return bias is null ? output : output + bias.view(1, OutputChannels, 1, 1);
    }

    private Tensor GatherMatmulForward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = Stride == 1 ? input : input.slice(2, 0, input.shape[2], Stride).slice(3, 0, input.shape[3], Stride);
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var columns = x.transpose(0, 1).reshape(InputChannels, n * h * w);
        var gathered = columns.index_select(0, indices.view(-1)).view(OutputChannels, Degree, n * h * w);
        var y = bmm(weight.view(OutputChannels, 1, Degree), gathered).view(OutputChannels, n, h, w).transpose(0, 1).contiguous();
        if (bias is not null)
        {
            y = y + bias.view(1, OutputChannels, 1, 1);
        }

        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The block count of the graph now in <c>indices</c> and the channels the grouped form gathers; recomputed when the
    /// buffer's values change (loading a state dict copies into it).
    /// </summary>
    private int Plan()
    {
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

        var graph = Graph;
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
    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path) =>
        OnnxExport.ConvBatchNorm(graph, this, null, input, path, null);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            planIndices?.Dispose();
            planGather?.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"ExpanderConv2d({InputChannels}, {OutputChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}, degree={Degree}, bias={bias is not null})";
}
