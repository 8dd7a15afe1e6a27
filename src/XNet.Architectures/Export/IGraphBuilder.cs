namespace XNet.Architectures.Export;

/// <summary>How an expander convolution is written into an exported graph; both forms compute exactly the same function.</summary>
public enum ExpanderConvForm
{
    /// <summary>One ordinary convolution over the dense weight, zero where the graph has no connection.</summary>
    DenseWeight,

    /// <summary>
    /// A Gather of each output block's D input channels, then a convolution with G groups over the compact weight
    /// (G = <see cref="Graphs.ExpanderGraph.BlockCount"/>: C_out for the paper's graphs, r C_in / D for structured ones).
    /// </summary>
    GatherGroupedConv,
}

/// <summary>
/// A package-free graph writer that the model classes export themselves into (their <see cref="IOnnxExportable.Export"/>
/// mirrors their <c>forward</c>). The operator names and semantics are ONNX's (opset 17); the implementation that writes
/// protobuf is <see cref="OnnxGraphBuilder"/>.
/// Every method returns the name of the value it produced.
/// </summary>
internal interface IGraphBuilder
{
    /// <summary>How expander convolutions are written.</summary>
    ExpanderConvForm ExpanderForm { get; }

    /// <summary>Adds a float32 constant (an initializer); returns its (unique) name, derived from <paramref name="name"/>.</summary>
    string Constant(string name, float[] values, params long[] shape);

    /// <summary>Adds an int64 constant; returns its (unique) name.</summary>
    string Constant(string name, long[] values, params long[] shape);

    /// <summary>Conv: weight (C_out, C_in / groups, kH, kW), optional bias (C_out), symmetric padding.</summary>
    string Conv(string input, string weight, string? bias, long[] kernel, long[] strides, long[] pads, long group);

    /// <summary>BatchNormalization in inference mode (running statistics).</summary>
    string BatchNormalization(string input, string scale, string bias, string mean, string variance, float epsilon);

    /// <summary>Relu.</summary>
    string Relu(string input);

    /// <summary>Clip to [min, max] (ReLU6 is Clip(0, 6)).</summary>
    string Clip(string input, float min, float max);

    /// <summary>Element-wise sum (with broadcasting).</summary>
    string Add(string a, string b);

    /// <summary>Element-wise difference (with broadcasting).</summary>
    string Sub(string a, string b);

    /// <summary>Element-wise quotient (with broadcasting).</summary>
    string Div(string a, string b);

    /// <summary>Concatenation along <paramref name="axis"/>.</summary>
    string Concat(IReadOnlyList<string> inputs, long axis);

    /// <summary>MaxPool with symmetric padding.</summary>
    string MaxPool(string input, long[] kernel, long[] strides, long[] pads, bool ceilMode);

    /// <summary>AveragePool with symmetric padding; <paramref name="countIncludePad"/> as PyTorch's.</summary>
    string AveragePool(string input, long[] kernel, long[] strides, long[] pads, bool ceilMode, bool countIncludePad);

    /// <summary>GlobalAveragePool: (N, C, H, W) to (N, C, 1, 1).</summary>
    string GlobalAveragePool(string input);

    /// <summary>Flatten to two dimensions at <paramref name="axis"/>.</summary>
    string Flatten(string input, long axis);

    /// <summary>Gemm with transB = 1: input (N, in) times weight (out, in) transposed, plus an optional bias (out).</summary>
    string Gemm(string input, string weight, string? bias);

    /// <summary>Gather along <paramref name="axis"/> with int64 indices.</summary>
    string Gather(string input, string indices, long axis);
}
