using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures;
using XNet.Architectures.Export;
using XNet.MLNet.Data;
using XNet.MLNet.Onnx;
using static TorchSharp.torch;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class OnnxExportTests
{
    private const double Tolerance = 1e-4;
    private static readonly ImageShape Shape = new(3, 32, 32);
    private static readonly string[] Classes = Enumerable.Range(0, 10).Select(i => $"class {i}").ToArray();

    public static IEnumerable<object[]> RegisteredModels => ModelZoo.Names.Select(n => new object[] { n });

    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// Every registered model, 3x32x32 (the smallest input the ImageNet ResNets and DenseNets accept), random weights and
    /// random BatchNorm statistics: ONNX Runtime (all graph optimisations) gives TorchSharp's evaluation-mode logits.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(RegisteredModels))]
    public void EveryRegisteredModelExportsWithTorchSharpsOutputs(string name)
    {
        using var model = RandomModel(name, seed: name.Length);
        var input = RandomPixels(3, seed: 7);
        var expected = TorchLogits(model, input, 3);

        var watch = Stopwatch.StartNew();
        using var session = Session(Export(model, OnnxModelWriter.DefaultExpanderForm));
        var (logits, score, index) = Run(session, input, 3);
        long milliseconds = watch.ElapsedMilliseconds;

        double ratio = AssertClose(expected, logits, name);
        TestContext.WriteLine($"ONNX parity {name}: max |ORT - TorchSharp| / max |logit| = {ratio:E2}; export + ORT session + run {milliseconds} ms");
        AssertHeads(logits, score, index, name);
    }

    [TestMethod]
    [DataRow("x-resnet-20-4")]
    [DataRow("x-densenet-bc-40-24-2")]
    [DataRow("x-vgg16")]
    [DataRow("x-mobilenet-0.5-4")]
    [DataRow("x-resnet-18-2")]
    [DataRow("s-resnet-20-4")]
    [DataRow("s-densenet-bc-40-24-2")]
    public void TheGatherFormOfExpanderConvolutionsGivesTheSameOutputs(string name)
    {
        using var model = RandomModel(name, seed: 11);
        var input = RandomPixels(2, seed: 5);
        var expected = TorchLogits(model, input, 2);
        byte[] gather = Export(model, ExpanderConvForm.GatherGroupedConv);
        using var session = Session(gather);

        AssertClose(expected, Run(session, input, 2).Logits, name + " (gather form)");
        Assert.IsTrue(Operators(gather).Contains("Gather"), "the gather form writes Gather nodes");
        Assert.IsFalse(Operators(Export(model, ExpanderConvForm.DenseWeight)).Contains("Gather"), "the dense form writes none");
    }

    [TestMethod]
    public void MetadataRoundTripsAndTheBatchDimensionIsSymbolic()
    {
        using var model = RandomModel("x-resnet-20-4", seed: 3);
        using var session = Session(Export(model, OnnxModelWriter.DefaultExpanderForm));

        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.AreEqual("x-resnet-20-4", metadata[XNetOnnx.ArchitectureKey]);
        Assert.AreEqual("3", metadata[XNetOnnx.SeedKey]);
        CollectionAssert.AreEqual(new[] { 3, 32, 32 }, JsonSerializer.Deserialize<int[]>(metadata[XNetOnnx.InputShapeKey]));
        CollectionAssert.AreEqual(new[] { 125.3f, 123.0f, 113.9f }, JsonSerializer.Deserialize<float[]>(metadata[XNetOnnx.MeanKey]));
        CollectionAssert.AreEqual(new[] { 63.0f, 62.1f, 66.7f }, JsonSerializer.Deserialize<float[]>(metadata[XNetOnnx.StdKey]));
        CollectionAssert.AreEqual(Classes, JsonSerializer.Deserialize<string[]>(metadata[XNetOnnx.ClassNamesKey]));
        Assert.AreEqual(OnnxModelWriter.LibraryVersion, metadata[XNetOnnx.LibraryVersionKey]);
        Assert.IsFalse(string.IsNullOrWhiteSpace(metadata[XNetOnnx.LibraryVersionKey]));
        Assert.AreEqual("XNet.MLNet", session.ModelMetadata.ProducerName);

        var inputInfo = session.InputMetadata[XNetOnnx.Input];
        CollectionAssert.AreEqual(new[] { -1, 3, 32, 32 }, inputInfo.Dimensions);
        Assert.AreEqual(XNetOnnx.BatchDimension, inputInfo.SymbolicDimensions[0]);
        CollectionAssert.AreEqual(new[] { XNetOnnx.Logits, XNetOnnx.Score, XNetOnnx.PredictedIndex },
            session.OutputMetadata.Keys.ToArray());
        CollectionAssert.AreEqual(new[] { -1, 10 }, session.OutputMetadata[XNetOnnx.Score].Dimensions);
        CollectionAssert.AreEqual(new[] { -1 }, session.OutputMetadata[XNetOnnx.PredictedIndex].Dimensions);
        Assert.AreEqual(typeof(uint), session.OutputMetadata[XNetOnnx.PredictedIndex].ElementType);

        // Batch 1 and batch 3 both run; image 0 scores the same alone and in a batch.
        var three = RandomPixels(3, seed: 9);
        var batched = Run(session, three, 3);
        var single = Run(session, three[..Shape.Size], 1);
        Assert.AreEqual(30, batched.Logits.Length);
        Assert.AreEqual(10, single.Logits.Length);
        AssertClose(batched.Logits[..10], single.Logits, "batch 1 vs batch 3");
        Assert.AreEqual(batched.Index[0], single.Index[0]);
        AssertClose(TorchLogits(model, three, 3), batched.Logits, "batch 3 vs TorchSharp");
    }

    [TestMethod]
    public void ExportToAPathWritesTheFileAtomically()
    {
        using var model = RandomModel("resnet-20", seed: 1);
        string folder = Path.Combine(Path.GetTempPath(), "xnet-onnx-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = Path.Combine(folder, "sub", "model.onnx");
            XNetModelFile.ExportOnnx(model, path);
            XNetModelFile.ExportOnnx(model, path); // overwrites

            CollectionAssert.AreEqual(new[] { "model.onnx" }, Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName).ToArray());
            using var stream = new MemoryStream();
            XNetModelFile.ExportOnnx(model, stream);
            CollectionAssert.AreEqual(stream.ToArray(), File.ReadAllBytes(path), "the file holds exactly the stream export");
            using var session = new InferenceSession(path);
            Assert.AreEqual("resnet-20", session.ModelMetadata.CustomMetadataMap[XNetOnnx.ArchitectureKey]);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [TestMethod]
    public void ALayerWithoutAnExportIsRefusedByName()
    {
        using var network = nn.Sequential(("conv", nn.Conv2d(3, 4, 3)), ("act", nn.Tanh()));
        var builder = new OnnxGraphBuilder(ExpanderConvForm.DenseWeight, "test");

        var error = Assert.ThrowsExactly<NotSupportedException>(() => OnnxExport.Module(builder, network, "input", "network"));
        StringAssert.Contains(error.Message, "'network.act'");
        StringAssert.Contains(error.Message, "Tanh");
    }

    [TestMethod]
    public void FoldingABatchNormIntoAConvolutionKeepsItsOutput()
    {
        manual_seed(4);
        using var conv = nn.Conv2d(3, 5, 3, padding: 1, bias: true);
        using var norm = RandomizeBatchNorm(nn.BatchNorm2d(5));
        using var sequence = nn.Sequential(("0", conv), ("1", norm));
        sequence.eval();
        var builder = new OnnxGraphBuilder(ExpanderConvForm.DenseWeight, "test");
        OnnxExport.Module(builder, sequence, "input", "");

        CollectionAssert.AreEqual(new[] { "Conv" }, builder.Graph.Node.Select(n => n.OpType).ToArray(), "the BatchNorm is folded away");
        var folded = builder.Graph.Initializer.Single(t => t.Name == "0+1.weight").RawData.ToByteArray();
        Assert.AreEqual(5 * 3 * 3 * 3 * sizeof(float), folded.Length);
    }

    private static XNetModelParameters RandomModel(string name, int seed)
    {
        manual_seed(seed);
        var model = XNetModelParameters.Create(name, 3, Shape, Classes, LabelKeyValues.Text, new[] { 125.3f, 123.0f, 113.9f }, new[] { 63.0f, 62.1f, 66.7f }, CPU);
        foreach (var norm in model.Network.modules().OfType<BatchNorm2d>())
        {
            RandomizeBatchNorm(norm);
        }

        model.Network.eval();
        return model;
    }

    // Running statistics and affine parameters away from their defaults, so that folding them is really tested.
    private static BatchNorm2d RandomizeBatchNorm(BatchNorm2d norm)
    {
        using var noGrad = no_grad();
        // Drawn in place with plain double arguments: tensor-and-number operators (randn(c) * 0.1) pass native scalars
        // that a garbage collection on another thread can free during the call (troubleshooting.md, toFloat).
        norm.running_mean!.normal_(0, 0.1);
        norm.running_var!.uniform_(0.75, 1.25);
        norm.weight!.normal_(1, 0.1);
        norm.bias!.normal_(0, 0.1);
        return norm;
    }

    private static float[] RandomPixels(int batch, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, batch * Shape.Size).Select(_ => (float)(random.NextDouble() * 255)).ToArray();
    }

    private static float[] TorchLogits(XNetModelParameters model, float[] pixels, int batch)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.Network.eval();
        var logits = model.Network.forward(tensor(pixels, new long[] { batch, Shape.Channels, Shape.Height, Shape.Width }));
        return logits.data<float>().ToArray();
    }

    private static byte[] Export(XNetModelParameters model, ExpanderConvForm form)
    {
        using var stream = new MemoryStream();
        model.ExportOnnx(stream, form);
        return stream.ToArray();
    }

    private static InferenceSession Session(byte[] onnx)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 2 };
        return new InferenceSession(onnx, options);
    }

    private static HashSet<string> Operators(byte[] onnx) =>
        XNet.Architectures.Export.Onnx.ModelProto.Parser.ParseFrom(onnx).Graph.Node.Select(n => n.OpType).ToHashSet();

    private static (float[] Logits, float[] Score, uint[] Index) Run(InferenceSession session, float[] pixels, int batch)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, new long[] { batch, Shape.Channels, Shape.Height, Shape.Width });
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new[] { XNetOnnx.Input }, new[] { input },
            new[] { XNetOnnx.Logits, XNetOnnx.Score, XNetOnnx.PredictedIndex });
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), outputs[1].GetTensorDataAsSpan<float>().ToArray(),
            outputs[2].GetTensorDataAsSpan<uint>().ToArray());
    }

    private static double AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        double scale = expected.Max(v => Math.Abs((double)v));
        double diff = expected.Zip(actual, (e, a) => Math.Abs((double)e - a)).Max();
        Assert.IsTrue(expected.All(float.IsFinite) && scale > 0, $"{what}: TorchSharp's logits must be finite and not all zero (max |logit| {scale}).");
        Assert.IsTrue(diff <= Tolerance * scale, $"{what}: max |ORT - TorchSharp| = {diff:E3}, max |logit| = {scale:E3}, ratio {diff / scale:E3} > {Tolerance}.");
        return diff / scale;
    }

    private static void AssertHeads(float[] logits, float[] score, uint[] index, string what)
    {
        int classes = Classes.Length;
        for (int row = 0; row < index.Length; row++)
        {
            var rowLogits = logits.AsSpan(row * classes, classes);
            var rowScore = score.AsSpan(row * classes, classes);
            double max = rowLogits.ToArray().Max();
            double sum = rowLogits.ToArray().Sum(v => Math.Exp(v - max));
            for (int k = 0; k < classes; k++)
            {
                Assert.AreEqual(Math.Exp(rowLogits[k] - max) / sum, rowScore[k], 1e-5, $"{what}: Score is the softmax of the logits (row {row}).");
            }

            Assert.AreEqual((uint)rowLogits.IndexOf((float)max), index[row], $"{what}: PredictedIndex is the argmax (row {row}).");
        }
    }
}
