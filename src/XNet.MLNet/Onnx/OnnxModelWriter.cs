using System.Reflection;
using System.Text.Json;
using Google.Protobuf;
using XNet.Architectures.Export;
using XNet.Architectures.Export.Onnx;

namespace XNet.MLNet.Onnx;

/// <summary>
/// Builds the ONNX model of a trained X-Net: the evaluation-mode network (normalisation included) walked through
/// <see cref="OnnxGraphBuilder.AddModule"/>, then the heads (Softmax, ArgMax as uint32, and for <c>mlContext.Model.Save</c> an affine map
/// of the logits into the input of ML.NET's own scorer), the symbolic batch dimension and the metadata.
/// </summary>
internal static class OnnxModelWriter
{
    /// <summary>How expander convolutions are written by default (the faster form measured in docs/onnx.md).</summary>
    public const ExpanderConvForm DefaultExpanderForm = ExpanderConvForm.DenseWeight;

    /// <summary>The library version written into the metadata and the producer field.</summary>
    public static string LibraryVersion { get; } =
        typeof(OnnxModelWriter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(OnnxModelWriter).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>The ONNX model of <paramref name="model"/>.</summary>
    /// <param name="model">The trained model.</param>
    /// <param name="expanderForm">How expander convolutions are written.</param>
    /// <param name="affineHead">When set, one more output, <c>logits x Weights^T + Bias</c> (float32 (batch, classes)) under this name.</param>
    public static ModelProto Build(XNetModelParameters model, ExpanderConvForm expanderForm, AffineHead? affineHead = null)
    {
        var shape = model.InputShape;
        int classes = model.NumberOfClasses;
        var builder = new OnnxGraphBuilder(expanderForm, model.Architecture);
        var graph = builder.Graph;
        graph.Input.Add(Tensor(builder.Reserve(XNetOnnx.Input), TensorProto.Types.DataType.Float, shape.Channels, shape.Height, shape.Width));
        foreach (string output in new[] { XNetOnnx.Logits, XNetOnnx.Score, XNetOnnx.PredictedIndex })
        {
            builder.Reserve(output);
        }

        string last = builder.AddModule(model.Network, XNetOnnx.Input);
        builder.Node("Identity", new[] { last }, XNetOnnx.Logits);
        builder.Node("Softmax", new[] { XNetOnnx.Logits }, XNetOnnx.Score, OnnxGraphBuilder.Int("axis", 1));
        string argmax = builder.Node("ArgMax", new[] { XNetOnnx.Logits }, OnnxGraphBuilder.Int("axis", 1), OnnxGraphBuilder.Int("keepdims", 0));
        builder.Node("Cast", new[] { argmax }, XNetOnnx.PredictedIndex, OnnxGraphBuilder.Int("to", (long)TensorProto.Types.DataType.Uint32));

        graph.Output.Add(Tensor(XNetOnnx.Logits, TensorProto.Types.DataType.Float, classes));
        graph.Output.Add(Tensor(XNetOnnx.Score, TensorProto.Types.DataType.Float, classes));
        graph.Output.Add(Tensor(XNetOnnx.PredictedIndex, TensorProto.Types.DataType.Uint32));
        if (affineHead is not null)
        {
            string weights = builder.Constant("affine_head_weights_t", affineHead.WeightsTransposed, classes, classes);
            string bias = builder.Constant("affine_head_bias", affineHead.Bias, classes);
            string product = builder.Node("MatMul", new[] { XNetOnnx.Logits, weights });
            builder.Node("Add", new[] { product, bias }, builder.Reserve(affineHead.Output));
            graph.Output.Add(Tensor(affineHead.Output, TensorProto.Types.DataType.Float, classes));
        }

        var onnx = new ModelProto
        {
            IrVersion = XNetOnnx.IrVersion,
            ProducerName = "XNet.MLNet",
            ProducerVersion = LibraryVersion,
            Domain = "xnet",
            ModelVersion = 1,
            DocString = $"X-Net '{model.Architecture}' ({classes} classes, input {shape}): raw pixels in, logits, softmax Score and PredictedIndex out.",
            Graph = graph,
        };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = XNetOnnx.Opset });
        Metadata(onnx, XNetOnnx.ArchitectureKey, model.Architecture);
        Metadata(onnx, XNetOnnx.SeedKey, model.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Metadata(onnx, XNetOnnx.InputShapeKey, JsonSerializer.Serialize(new[] { shape.Channels, shape.Height, shape.Width }));
        Metadata(onnx, XNetOnnx.MeanKey, JsonSerializer.Serialize(model.ChannelMean));
        Metadata(onnx, XNetOnnx.StdKey, JsonSerializer.Serialize(model.ChannelStd));
        Metadata(onnx, XNetOnnx.ClassNamesKey, JsonSerializer.Serialize(model.ClassNames));
        Metadata(onnx, XNetOnnx.LibraryVersionKey, LibraryVersion);
        return onnx;
    }

    /// <summary>Writes <paramref name="onnx"/> to <paramref name="stream"/>.</summary>
    public static void Write(ModelProto onnx, Stream stream)
    {
        using var output = new CodedOutputStream(stream, leaveOpen: true);
        onnx.WriteTo(output);
        output.Flush();
    }

    // A tensor value with a symbolic batch dimension first, then the given fixed dimensions. The shape is always
    // present (ML.NET dereferences it).
    private static ValueInfoProto Tensor(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var tensorShape = new TensorShapeProto();
        tensorShape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = XNetOnnx.BatchDimension });
        foreach (long dim in dims)
        {
            tensorShape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = tensorShape } },
        };
    }

    private static void Metadata(ModelProto onnx, string key, string value) =>
        onnx.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
}

/// <summary>An extra ONNX output <c>logits x W^T + b</c>.</summary>
/// <param name="Output">The output's name.</param>
/// <param name="WeightsTransposed">W^T, row-major (classes x classes).</param>
/// <param name="Bias">b (classes).</param>
internal sealed record AffineHead(string Output, float[] WeightsTransposed, float[] Bias);
