using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using XNet.Architectures;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using XNet.MLNet;
using XNet.MLNet.Data;
using XNet.MLNet.Onnx;
using XNet.Architectures.Export.Onnx;
using static TorchSharp.torch;

/// <summary>
/// Times the two exact ONNX forms of an expander convolution in ONNX Runtime (CPU, all graph optimisations): the dense
/// weight with zeros for absent connections, and Gather of the input channels + a convolution with C_out groups.
/// Single layers at zoo shapes, then whole models.
/// </summary>
internal static class OnnxExpanderBenchmark
{
    private static readonly (string Model, string Layer, int In, int Out, int Kernel, int Stride, double E, int Size)[] Layers =
    {
        ("x-resnet-20-4", "layer1.0.conv1", 16, 16, 3, 1, 4, 32),
        ("x-resnet-20-4", "layer3.1.conv1", 64, 64, 3, 1, 4, 8),
        ("x-densenet-bc-40-24-2", "block2.denselayer6.conv1 (1x1)", 216, 96, 1, 1, 2, 16),
        ("x-densenet-bc-40-24-2", "block2.denselayer6.conv2 (3x3)", 96, 24, 3, 1, 2, 16),
        ("x-mobilenet-0.5-4", "layers.7.conv2 (1x1)", 256, 256, 1, 1, 4, 14),
        ("x-resnet-50-2", "layer3.0.conv2 (3x3)", 256, 256, 3, 1, 2, 14),
    };

    private static readonly (string Name, ImageShape Input)[] Models =
    {
        ("x-resnet-20-4", new ImageShape(3, 32, 32)),
        ("x-densenet-bc-40-24-2", new ImageShape(3, 32, 32)),
        ("x-mobilenet-0.5-4", new ImageShape(3, 224, 224)),
        ("x-resnet-50-2", new ImageShape(3, 224, 224)),
    };

    public static void Run(double seconds)
    {
        Console.WriteLine($"ONNX Runtime {OrtEnv.Instance().GetVersionString()}, ORT_ENABLE_ALL, default intra-op threads; median ms per run");
        Console.WriteLine();
        Console.WriteLine("| model | layer | C_in -> C_out, k, e, H=W | batch | dense weight (ms) | gather + grouped conv (ms) | gather / dense |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|");
        foreach (var l in Layers)
        {
            manual_seed(1);
            using var conv = new ExpanderConv2d(l.Layer, l.In, l.Out, l.Kernel, l.E, 0, l.Stride, l.Kernel / 2);
            foreach (int batch in new[] { 1, 32 })
            {
                var shape = new long[] { batch, l.In, l.Size, l.Size };
                double dense = Time(Layer(conv, ExpanderConvForm.DenseWeight, l.In), shape, seconds);
                double gather = Time(Layer(conv, ExpanderConvForm.GatherGroupedConv, l.In), shape, seconds);
                Console.WriteLine($"| {l.Model} | {l.Layer} | {l.In} -> {l.Out}, {l.Kernel}x{l.Kernel}, {l.E}, {l.Size} | {batch} | {dense:F3} | {gather:F3} | {gather / dense:F2} |");
            }
        }

        Console.WriteLine();
        Console.WriteLine("| model | input | batch | dense weight (ms) | gather + grouped conv (ms) | gather / dense | file size dense / gather (bytes) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var (name, input) in Models)
        {
            manual_seed(1);
            using var model = XNetModelParameters.Create(name, 0, input, Enumerable.Range(0, 10).Select(i => $"{i}").ToArray(), LabelKeyValues.Text,
                new[] { 127f, 127f, 127f }, new[] { 64f, 64f, 64f }, CPU);
            foreach (int batch in new[] { 1, 8 })
            {
                var shape = new long[] { batch, input.Channels, input.Height, input.Width };
                byte[] denseFile = Export(model, ExpanderConvForm.DenseWeight), gatherFile = Export(model, ExpanderConvForm.GatherGroupedConv);
                double dense = Time(denseFile, shape, seconds);
                double gather = Time(gatherFile, shape, seconds);
                Console.WriteLine($"| {name} | {input} | {batch} | {dense:F3} | {gather:F3} | {gather / dense:F2} | {denseFile.Length:N0} / {gatherFile.Length:N0} |");
            }
        }
    }

    private static byte[] Export(XNetModelParameters model, ExpanderConvForm form)
    {
        using var stream = new MemoryStream();
        model.ExportOnnx(stream, form);
        return stream.ToArray();
    }

    // A one-layer model: input (batch, C_in, H, W) -> the expander convolution -> output.
    private static byte[] Layer(ExpanderConv2d conv, ExpanderConvForm form, int inputChannels)
    {
        var builder = new OnnxGraphBuilder(form, "layer");
        builder.Reserve("input");
        string output = OnnxExport.Module(builder, conv, "input", "conv");
        builder.Graph.Input.Add(Value("input", 4));
        builder.Graph.Output.Add(Value(output, 4));
        var model = new ModelProto { IrVersion = XNetOnnx.IrVersion, Graph = builder.Graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = XNetOnnx.Opset });
        using var stream = new MemoryStream();
        OnnxModelWriter.Write(model, stream);
        return stream.ToArray();
    }

    private static ValueInfoProto Value(string name, int rank)
    {
        var shape = new TensorShapeProto();
        for (int i = 0; i < rank; i++)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = $"d{i}" });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static double Time(byte[] onnx, long[] shape, double seconds)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(onnx, options);
        var random = new Random(1);
        var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (float)(random.NextDouble() * 255);
        }

        using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions();
        string inputName = session.InputNames[0];
        string[] outputs = { session.OutputNames[0] };
        void Once()
        {
            using var result = session.Run(runOptions, new[] { inputName }, new[] { input }, outputs);
        }

        for (int i = 0; i < 3; i++)
        {
            Once();
        }

        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while ((total.Elapsed.TotalSeconds < seconds || times.Count < 5) && times.Count < 2000)
        {
            var watch = Stopwatch.StartNew();
            Once();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        return times[times.Count / 2];
    }
}
