using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Export;

/// <summary>
/// Writes modules into an <see cref="OnnxGraphBuilder"/>: TorchSharp's own layers (Conv2d, BatchNorm2d, Linear, ReLU, pooling,
/// Sequential) here, the project's layers and models through their <see cref="IOnnxExportable"/> implementation.
/// A convolution followed directly by a BatchNorm2d is written as one convolution with the normalisation folded in.
/// </summary>
internal static class OnnxExport
{
    /// <summary>Emits <paramref name="module"/> in evaluation mode; returns its output value.</summary>
    /// <exception cref="NotSupportedException">When the module (or one inside it) has no export; names it and its path.</exception>
    public static string Module(OnnxGraphBuilder graph, nn.Module module, string input, string path)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(module);
        return module switch
        {
            IOnnxExportable exportable => exportable.Export(graph, input, path),
            Sequential sequential => Sequential(graph, sequential, input, path),
            Conv2d conv => Convolution(graph, Spec(conv, path), input),
            BatchNorm2d norm => BatchNorm(graph, BatchNormSpec.Of(norm, path), input),
            Linear linear => Gemm(graph, input, path, Data(linear.weight), linear.weight.shape, linear.bias is null ? null : Data(linear.bias)),
            ReLU => graph.Relu(input),
            ReLU6 => graph.Clip(input, 0, 6),
            Dropout => input, // identity in evaluation mode
            MaxPool2d pool => MaxPool(graph, pool, input, path),
            AdaptiveAvgPool2d pool => GlobalAveragePool(graph, pool, input, path),
            _ => throw new NotSupportedException(
                $"ONNX export: layer '{path}' is a {module.GetType().Name}, which has no ONNX export. " +
                "Supported: the zoo's models and blocks, ExpanderConv2d, ExpanderLinear, GroupedLinear, Normalize, Conv2d, BatchNorm2d, " +
                "Linear, ReLU, ReLU6, Dropout, MaxPool2d, AdaptiveAvgPool2d(1), Sequential."),
        };
    }

    /// <summary>
    /// Emits a convolution (Conv2d or ExpanderConv2d) followed by an optional batch normalisation folded into it.
    /// </summary>
    public static string ConvBatchNorm(OnnxGraphBuilder graph, nn.Module conv, BatchNorm2d? norm, string input, string convPath, string? normPath)
    {
        var spec = ConvolutionOf(graph, conv, convPath);
        if (norm is not null)
        {
            spec = spec.Fold(BatchNormSpec.Of(norm, normPath ?? convPath + ".bn"));
        }

        return Convolution(graph, spec, input);
    }

    /// <summary>Emits a BatchNorm2d as a BatchNormalization node (where no convolution precedes it to fold into).</summary>
    public static string BatchNorm(OnnxGraphBuilder graph, BatchNorm2d norm, string input, string path) =>
        BatchNorm(graph, BatchNormSpec.Of(norm, path), input);

    /// <summary>The path of a child: <c>parent.child</c>, or just <c>child</c> at the root.</summary>
    public static string Child(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    /// <summary>Global average pooling then flattening: <c>adaptive_avg_pool2d(x, 1).flatten(1)</c>.</summary>
    public static string GlobalPoolFlatten(OnnxGraphBuilder graph, string input) => graph.Flatten(graph.GlobalAveragePool(input), 1);

    /// <summary>Emits a Gemm (transB) with the given weight (out, in) and bias.</summary>
    public static string Gemm(OnnxGraphBuilder graph, string input, string path, float[] weight, long[] shape, float[]? bias)
    {
        string w = graph.Constant(Child(path, "weight"), weight, shape);
        string? b = bias is null ? null : graph.Constant(Child(path, "bias"), bias, bias.Length);
        return graph.Gemm(input, w, b);
    }

    /// <summary>A tensor's values as a float array (detached, on the CPU, row-major).</summary>
    public static float[] Data(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return tensor.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }

    private static string Sequential(OnnxGraphBuilder graph, Sequential sequential, string input, string path)
    {
        var children = sequential.named_children().ToList();
        string x = input;
        for (int i = 0; i < children.Count; i++)
        {
            var (name, child) = children[i];
            bool isConv = child is Conv2d or ExpanderConv2d;
            if (isConv && i + 1 < children.Count && children[i + 1].module is BatchNorm2d norm)
            {
                x = ConvBatchNorm(graph, child, norm, x, Child(path, name), Child(path, children[i + 1].name));
                i++;
                continue;
            }

            x = Module(graph, child, x, Child(path, name));
        }

        return x;
    }

    private static ConvolutionSpec ConvolutionOf(OnnxGraphBuilder graph, nn.Module conv, string path) => conv switch
    {
        Conv2d dense => Spec(dense, path),
        ExpanderConv2d expander => expander.ToConvolutionSpec(graph.ExpanderForm, path),
        _ => throw new NotSupportedException(
            $"ONNX export: layer '{path}' is a {conv.GetType().Name}; a Conv2d or an ExpanderConv2d was expected before a BatchNorm2d."),
    };

    private static string Convolution(OnnxGraphBuilder graph, ConvolutionSpec spec, string input)
    {
        string x = input;
        if (spec.GatherIndices is not null)
        {
            string indices = graph.Constant(Child(spec.Path, "indices"), spec.GatherIndices, spec.GatherIndices.Length);
            x = graph.Gather(x, indices, 1);
        }

        string weight = graph.Constant(Child(spec.Path, "weight"), spec.Weight, spec.WeightShape);
        string? bias = spec.Bias is null ? null : graph.Constant(Child(spec.Path, "bias"), spec.Bias, spec.Bias.Length);
        return graph.Conv(x, weight, bias, spec.WeightShape[2..], spec.Strides, spec.Pads, spec.Group);
    }

    private static string BatchNorm(OnnxGraphBuilder graph, BatchNormSpec spec, string input)
    {
        long c = spec.Mean.Length;
        return graph.BatchNormalization(input,
            graph.Constant(Child(spec.Path, "weight"), spec.Scale, c), graph.Constant(Child(spec.Path, "bias"), spec.Bias, c),
            graph.Constant(Child(spec.Path, "running_mean"), spec.Mean, c), graph.Constant(Child(spec.Path, "running_var"), spec.Variance, c),
            spec.Epsilon);
    }

    private static ConvolutionSpec Spec(Conv2d conv, string path)
    {
        if (conv.padding is null || conv.padding_mode != PaddingModes.Zeros || conv.dilation.Any(d => d != 1) || conv.transposed)
        {
            throw new NotSupportedException(
                $"ONNX export: convolution '{path}' must use explicit zero padding, dilation 1 and no transposition " +
                $"(padding {(conv.padding is null ? "'same'/'valid'" : string.Join("x", conv.padding))}, mode {conv.padding_mode}, dilation {string.Join("x", conv.dilation)}).");
        }

        return new ConvolutionSpec(path, Data(conv.weight), conv.weight.shape, conv.bias is null ? null : Data(conv.bias),
            conv.stride.ToArray(), conv.padding.ToArray(), conv.groups, null);
    }

    private static string MaxPool(OnnxGraphBuilder graph, MaxPool2d pool, string input, string path)
    {
        long[] kernel = pool.kernel_size;
        long[] stride = pool.stride ?? kernel;
        long[] padding = pool.padding ?? new long[kernel.Length];
        if (pool.dilation is not null && pool.dilation.Any(d => d != 1))
        {
            throw new NotSupportedException($"ONNX export: max pooling '{path}' must have dilation 1.");
        }

        return graph.MaxPool(input, kernel, stride, padding, pool.ceil_mode);
    }

    private static string GlobalAveragePool(OnnxGraphBuilder graph, AdaptiveAvgPool2d pool, string input, string path)
    {
        if (pool.output_size.Any(s => s != 1))
        {
            throw new NotSupportedException(
                $"ONNX export: adaptive average pooling '{path}' has output size {string.Join("x", pool.output_size)}; only 1 (global pooling) is exported.");
        }

        return graph.GlobalAveragePool(input);
    }
}
