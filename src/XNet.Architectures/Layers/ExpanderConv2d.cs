using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Graphs;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A 2-D convolution whose channel connections follow an <see cref="ExpanderGraph"/>: output channel o sees only its
/// D input channels, each through a full k x k kernel.
/// </summary>
/// <remarks>
/// Parameters are compact, <c>weight</c> (C_out, D, k, k), so the parameter count is the effective count and weight
/// decay never touches absent connections; the graph is the int64 buffer <c>indices</c> (C_out, D), saved with the
/// weights. This is the reference implementation: the compact weight is scattered into a dense (C_out, C_in, k, k)
/// weight and a dense convolution runs. Faster implementations must match it.
/// </remarks>
public sealed class ExpanderConv2d : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter weight;
    private readonly Tensor indices;
    private readonly Parameter? bias;
    private readonly long[] stride;
    private readonly long[] padding;

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

        // Kaiming-normal with fan_out = C_out * k * k, drawn for the compact weight (the seed's init, without its dense waste).
        double std = Math.Sqrt(2.0 / (OutputChannels * kernelSize * kernelSize));
        this.weight = new Parameter(randn(OutputChannels, Degree, kernelSize, kernelSize) * std);
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

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var dense = DenseWeight();
        return nn.functional.conv2d(input, dense, bias, stride, padding);
    }

    /// <summary>The exact equivalent of <see cref="forward"/> as a plain convolution, in either export form.</summary>
    internal ConvolutionSpec ToConvolutionSpec(ExpanderConvForm form, string path)
    {
        float[]? biasValues = bias is null ? null : OnnxExport.Data(bias);
        if (form == ExpanderConvForm.GatherGroupedConv)
        {
            // Output channel o convolves its D gathered inputs: gather (C_out x D) channels, then C_out groups of D.
            using var graphIndices = indices.cpu().contiguous();
            return new ConvolutionSpec(path, OnnxExport.Data(weight), new long[] { OutputChannels, Degree, KernelSize, KernelSize },
                biasValues, stride.ToArray(), padding.ToArray(), OutputChannels, graphIndices.data<long>().ToArray());
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
    public override string ToString() =>
        $"ExpanderConv2d({InputChannels}, {OutputChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}, degree={Degree}, bias={bias is not null})";
}
