using System.Runtime.InteropServices;
using Google.Protobuf;
using XNet.Architectures.Export.Onnx;
using TorchSharp;

namespace XNet.Architectures.Export;

/// <summary>
/// The ONNX export of TorchSharp networks: <see cref="AddModule"/> walks a network of this library's layers and model
/// families (and TorchSharp's own Conv2d, BatchNorm2d, Linear, pooling, ReLU and Sequential) in evaluation mode and writes
/// it into ONNX protobuf messages (<see cref="Graph"/>): one <see cref="NodeProto"/> per operation (opset 17), weights as
/// raw little-endian initializers, batch norms folded into the convolution before them. Callers add the graph's inputs,
/// outputs and heads with <see cref="Reserve"/>, <see cref="Node(string, string[], string?, AttributeProto[])"/> and
/// <see cref="Constant(string, float[], long[])"/>, then wrap <see cref="Graph"/> in a <see cref="ModelProto"/>.
/// </summary>
public sealed class OnnxGraphBuilder
{
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> counters = new(StringComparer.Ordinal);

    /// <summary>Creates a builder writing into a new graph.</summary>
    /// <param name="expanderForm">How expander convolutions are written (both forms compute the same function).</param>
    /// <param name="graphName">The graph's name.</param>
    public OnnxGraphBuilder(ExpanderConvForm expanderForm, string graphName)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX export writes raw little-endian tensors; this machine is big-endian.");
        }

        ExpanderForm = expanderForm;
        Graph = new GraphProto { Name = graphName };
    }

    /// <summary>How expander convolutions are written.</summary>
    public ExpanderConvForm ExpanderForm { get; }

    /// <summary>The graph written so far.</summary>
    public GraphProto Graph { get; }

    /// <summary>
    /// Writes <paramref name="module"/> applied to the value <paramref name="input"/> and returns the name of its output; its
    /// initializers are named by their module paths under <paramref name="path"/> (empty: the module is the root).
    /// </summary>
    /// <exception cref="NotSupportedException">When a layer has no ONNX export; the message names the layer.</exception>
    public string AddModule(torch.nn.Module module, string input, string path = "") => OnnxExport.Module(this, module, input, path);

    /// <summary>Reserves a value name (a graph input or output) so that nothing else takes it.</summary>
    public string Reserve(string name) =>
        names.Add(name) ? name : throw new InvalidOperationException($"ONNX export: the value name '{name}' is already used.");

    /// <summary>Adds a float32 constant (an initializer); returns its (unique) name, derived from <paramref name="name"/>.</summary>
    public string Constant(string name, float[] values, params long[] shape) =>
        AddInitializer(name, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values.AsSpan()), values.Length, shape);

    /// <summary>Adds an int64 constant; returns its (unique) name.</summary>
    public string Constant(string name, long[] values, params long[] shape) =>
        AddInitializer(name, TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()), values.Length, shape);

    /// <summary>Conv: weight (C_out, C_in / groups, kH, kW), optional bias (C_out), symmetric padding.</summary>
    public string Conv(string input, string weight, string? bias, long[] kernel, long[] strides, long[] pads, long group) =>
        Node("Conv", bias is null ? new[] { input, weight } : new[] { input, weight, bias },
            Ints("kernel_shape", kernel), Ints("strides", strides), Ints("pads", pads.Concat(pads)), Ints("dilations", kernel.Select(_ => 1L)),
            Int("group", group));

    /// <summary>BatchNormalization in inference mode (running statistics).</summary>
    public string BatchNormalization(string input, string scale, string bias, string mean, string variance, float epsilon) =>
        Node("BatchNormalization", new[] { input, scale, bias, mean, variance }, Float("epsilon", epsilon));

    /// <summary>Relu.</summary>
    public string Relu(string input) => Node("Relu", new[] { input });

    /// <summary>Clip to [min, max] (ReLU6 is Clip(0, 6)).</summary>
    public string Clip(string input, float min, float max) =>
        Node("Clip", new[] { input, Constant("clip_min", new[] { min }), Constant("clip_max", new[] { max }) });

    /// <summary>Element-wise sum (with broadcasting).</summary>
    public string Add(string a, string b) => Node("Add", new[] { a, b });

    /// <summary>Element-wise difference (with broadcasting).</summary>
    public string Sub(string a, string b) => Node("Sub", new[] { a, b });

    /// <summary>Element-wise quotient (with broadcasting).</summary>
    public string Div(string a, string b) => Node("Div", new[] { a, b });

    /// <summary>Concatenation along <paramref name="axis"/>.</summary>
    public string Concat(IReadOnlyList<string> inputs, long axis) => Node("Concat", inputs.ToArray(), Int("axis", axis));

    /// <summary>MaxPool with symmetric padding.</summary>
    public string MaxPool(string input, long[] kernel, long[] strides, long[] pads, bool ceilMode) =>
        Node("MaxPool", new[] { input }, Ints("kernel_shape", kernel), Ints("strides", strides), Ints("pads", pads.Concat(pads)),
            Int("ceil_mode", ceilMode ? 1 : 0));

    /// <summary>AveragePool with symmetric padding; <paramref name="countIncludePad"/> as PyTorch's.</summary>
    public string AveragePool(string input, long[] kernel, long[] strides, long[] pads, bool ceilMode, bool countIncludePad) =>
        Node("AveragePool", new[] { input }, Ints("kernel_shape", kernel), Ints("strides", strides), Ints("pads", pads.Concat(pads)),
            Int("ceil_mode", ceilMode ? 1 : 0), Int("count_include_pad", countIncludePad ? 1 : 0));

    /// <summary>GlobalAveragePool: (N, C, H, W) to (N, C, 1, 1).</summary>
    public string GlobalAveragePool(string input) => Node("GlobalAveragePool", new[] { input });

    /// <summary>Flatten to two dimensions at <paramref name="axis"/>.</summary>
    public string Flatten(string input, long axis) => Node("Flatten", new[] { input }, Int("axis", axis));

    /// <summary>Gemm with transB = 1: input (N, in) times weight (out, in) transposed, plus an optional bias (out).</summary>
    public string Gemm(string input, string weight, string? bias) =>
        Node("Gemm", bias is null ? new[] { input, weight } : new[] { input, weight, bias }, Int("transB", 1));

    /// <summary>Gather along <paramref name="axis"/> with int64 indices.</summary>
    public string Gather(string input, string indices, long axis) => Node("Gather", new[] { input, indices }, Int("axis", axis));

    /// <summary>Adds a node of any operator with one freshly named output; returns that name.</summary>
    public string Node(string opType, string[] inputs, params AttributeProto[] attributes) => Node(opType, inputs, null, attributes);

    /// <summary>Adds a node with one output named <paramref name="output"/> (or a fresh name when null).</summary>
    public string Node(string opType, string[] inputs, string? output, params AttributeProto[] attributes)
    {
        string name = Fresh(opType);
        string value = output ?? name;
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(value);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return value;
    }

    /// <summary>An INT attribute.</summary>
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>An INTS attribute.</summary>
    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A FLOAT attribute.</summary>
    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private string AddInitializer(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> data, long count, long[] shape)
    {
        long expected = shape.Aggregate(1L, (a, b) => a * b);
        if (expected != count)
        {
            throw new InvalidOperationException(
                $"ONNX export: constant '{name}' has {count} values but its shape [{string.Join(", ", shape)}] needs {expected}.");
        }

        string unique = Unique(name);
        var tensor = new TensorProto { Name = unique, DataType = (int)type, RawData = ByteString.CopyFrom(data) };
        tensor.Dims.AddRange(shape);
        Graph.Initializer.Add(tensor);
        return unique;
    }

    private string Fresh(string opType)
    {
        counters.TryGetValue(opType, out int n);
        counters[opType] = n + 1;
        return Unique($"{opType}_{n}");
    }

    private string Unique(string hint)
    {
        string name = hint;
        for (int i = 1; !names.Add(name); i++)
        {
            name = $"{hint}_{i}";
        }

        return name;
    }
}
