using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using XNet.Architectures.Export.Onnx;

namespace XNet.Cli.Tests;

/// <summary>
/// Hostile model files for <c>xnet predict/evaluate/export --model</c>: damaged X-Net files (<c>.xnet</c>) and ML.NET zips.
/// Each must end with exit code 1 and one <c>error:</c> line naming the file, without a stack trace, a hang, an absurd
/// allocation or a written output, and leave the file as it was.
/// </summary>
[TestClass]
public sealed class HostileModelFileTests : HostileTestBase
{
    private const string Metadata = "xnet-model.json";
    private const string Weights = "weights.bin";

    /// <summary>Cases that may hang, abort or allocate absurdly run as child processes with limits.</summary>
    private static readonly HashSet<string> Isolated =
    [
        "weights replaced by random bytes (valid zip)", "overlapping-entry zip bomb (16 GiB)", "input shape 1x100000x100000",
        "input shape 3x100000x100000", "a named pipe (FIFO)",
    ];

    [ClassInitialize]
    public static void TrainFixture(TestContext _) => HostileFixture.Get();

    [TestMethod]
    [DataRow("empty file")]
    [DataRow("truncated to half")]
    [DataRow("truncated to 100 bytes")]
    [DataRow("truncated by 1 byte")]
    [DataRow("not a zip (text)")]
    [DataRow("a BMP image")]
    [DataRow("no metadata entry")]
    [DataRow("no weights entry")]
    [DataRow("metadata not JSON")]
    [DataRow("metadata JSON null")]
    [DataRow("metadata JSON array")]
    [DataRow("architecture missing")]
    [DataRow("architecture null")]
    [DataRow("architecture unknown")]
    [DataRow("class names missing")]
    [DataRow("class names null")]
    [DataRow("class count 0")]
    [DataRow("class count 1")]
    [DataRow("class count 3, weights for 10")]
    [DataRow("mean missing")]
    [DataRow("std null")]
    [DataRow("mean of 1 value for 3 channels")]
    [DataRow("std with a zero")]
    [DataRow("channels 0")]
    [DataRow("height -32")]
    [DataRow("channels 1 (rank differs from the weights)")]
    [DataRow("format version 1")]
    [DataRow("format version 3")]
    [DataRow("label value type unknown")]
    [DataRow("label value type Boolean with text class names")]
    [DataRow("weights CRC mismatch (compressed byte flipped)")]
    [DataRow("metadata CRC mismatch (recorded CRC altered)")]
    [DataRow("weights truncated (valid zip)")]
    [DataRow("weights replaced by random bytes (valid zip)")]
    [DataRow("weights entry declares 2 GiB")]
    [DataRow("metadata deflate bomb (128 MiB)")]
    [DataRow("weights deflate bomb (128 MiB)")]
    [DataRow("overlapping-entry zip bomb (16 GiB)")]
    [DataRow("input shape 1x100000x100000")]
    [DataRow("input shape 3x100000x100000")]
    [DataRow("a directory")]
    [DataRow("a named pipe (FIFO)")]
    [DataRow("a symbolic link loop")]
    public void PredictRefusesADamagedXNetFile(string damage)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string model = Path.Combine(folder, "model.xnet");
        DamageXNet(fixture.Model, model, damage);
        var before = File.Exists(model) ? Snapshot.Of(model) : null;

        string[] args = ["predict", "--model", model, "--image", fixture.Image];
        var run = Isolated.Contains(damage) ? HostileCases.RunIsolated(TimeSpan.FromSeconds(10), args) : HostileCases.Run(args);

        HostileCases.AssertRefused(run, 1, [model], unchanged: before, clean: [folder],
            maxAllocated: damage.Contains("bomb", StringComparison.Ordinal) ? HostileCases.BombAllocationBudget : null);
    }

    [TestMethod]
    [DataRow("evaluate", "truncated to half")]
    [DataRow("evaluate", "no metadata entry")]
    [DataRow("evaluate", "weights CRC mismatch (compressed byte flipped)")]
    [DataRow("evaluate", "class count 0")]
    [DataRow("export", "truncated to half")]
    [DataRow("export", "architecture unknown")]
    [DataRow("export", "weights CRC mismatch (compressed byte flipped)")]
    [DataRow("export", "class count 0")]
    [DataRow("export", "input shape 3x100000x100000")]
    [DataRow("export", "overlapping-entry zip bomb (16 GiB)")]
    public void EvaluateAndExportRefuseADamagedXNetFileAndWriteNothing(string command, string damage)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string model = Path.Combine(folder, "model.xnet");
        DamageXNet(fixture.Model, model, damage);
        var before = Snapshot.Of(folder);
        string onnx = Path.Combine(folder, "out.onnx"), zip = Path.Combine(folder, "out.zip");

        string[] args = command == "evaluate"
            ? ["evaluate", "--model", model, "--data", fixture.Cifar]
            : ["export", "--model", model, "--onnx", onnx, "--mlnet", zip];
        var run = Isolated.Contains(damage) ? HostileCases.RunIsolated(TimeSpan.FromSeconds(10), args) : HostileCases.Run(args);

        HostileCases.AssertRefused(run, 1, [model], unchanged: before, absent: [onnx, zip], clean: [folder]);
    }

    [TestMethod]
    [DataRow("truncated to half")]
    [DataRow("OnnxModel CRC mismatch (compressed byte flipped)")]
    [DataRow("OnnxModel length prefix wrong (valid zip)")]
    [DataRow("OnnxModel protobuf garbage (valid zip)")]
    [DataRow("Model.key entries removed")]
    [DataRow("architecture metadata removed")]
    [DataRow("input shape of rank 2")]
    [DataRow("input shape 0x32x32")]
    [DataRow("input shape 3x100000x100000")]
    [DataRow("class names empty (0 classes)")]
    [DataRow("class names 3 for 10 outputs")]
    [DataRow("class names not JSON")]
    [DataRow("overlapping-entry zip bomb (16 GiB)")]
    public void PredictRefusesADamagedMlNetZip(string damage)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string zip = Path.Combine(folder, "model.zip");
        DamageMlNetZip(fixture.MlNetZip, zip, damage);
        var before = Snapshot.Of(zip);

        string[] args = ["predict", "--model", zip, "--image", fixture.Image];
        bool isolated = damage.Contains("100000", StringComparison.Ordinal) || damage.Contains("bomb", StringComparison.Ordinal);
        var run = isolated ? HostileCases.RunIsolated(TimeSpan.FromSeconds(10), args) : HostileCases.Run(args);

        HostileCases.AssertRefused(run, 1, [zip], unchanged: before, clean: [folder]);
    }

    [TestMethod]
    [DataRow("embedded X-Net file damaged")]
    [DataRow("embedded X-Net file removed")]
    [DataRow("OnnxModel CRC mismatch (compressed byte flipped)")]
    public void ExportRefusesADamagedMlNetZipAndWritesNothing(string damage)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string zip = Path.Combine(folder, "model.zip");
        DamageMlNetZip(fixture.MlNetZip, zip, damage);
        var before = Snapshot.Of(folder);
        string onnx = Path.Combine(folder, "out.onnx");

        var run = HostileCases.Run("export", "--model", zip, "--onnx", onnx);

        HostileCases.AssertRefused(run, 1, [zip], unchanged: before, absent: [onnx], clean: [folder]);
    }

    /// <summary>Writes <paramref name="target"/> as a copy of the valid model <paramref name="source"/> with <paramref name="damage"/>.</summary>
    private static void DamageXNet(string source, string target, string damage)
    {
        if (damage is "a directory")
        {
            Directory.CreateDirectory(target);
            return;
        }

        if (damage is "a named pipe (FIFO)")
        {
            HostileCases.MakeFifo(target);
            return;
        }

        if (damage is "a symbolic link loop")
        {
            File.CreateSymbolicLink(target, target);
            return;
        }

        File.Copy(source, target);
        long length = new FileInfo(target).Length;
        void Json(Action<JsonObject> edit) => HostileZip.EditJson(target, Metadata, edit);
        switch (damage)
        {
            case "empty file": HostileCases.Truncate(target, 0); break;
            case "truncated to half": HostileCases.Truncate(target, length / 2); break;
            case "truncated to 100 bytes": HostileCases.Truncate(target, 100); break;
            case "truncated by 1 byte": HostileCases.Truncate(target, length - 1); break;
            case "not a zip (text)": File.WriteAllText(target, "this is not a model\n"); break;
            case "a BMP image": File.Copy(HostileFixture.Get().Image, target, overwrite: true); break;
            case "no metadata entry": HostileZip.Edit(target, (name, content) => name == Metadata ? null : content); break;
            case "no weights entry": HostileZip.Edit(target, (name, content) => name == Weights ? null : content); break;
            case "metadata not JSON": HostileZip.Replace(target, Metadata, "{ \"formatVersion\": 2, "u8.ToArray()); break;
            case "metadata JSON null": HostileZip.Replace(target, Metadata, "null"u8.ToArray()); break;
            case "metadata JSON array": HostileZip.Replace(target, Metadata, "[1, 2, 3]"u8.ToArray()); break;
            case "architecture missing": Json(j => j.Remove("architecture")); break;
            case "architecture null": Json(j => j["architecture"] = null); break;
            case "architecture unknown": Json(j => j["architecture"] = "x-resnet-9999"); break;
            case "class names missing": Json(j => j.Remove("classNames")); break;
            case "class names null": Json(j => j["classNames"] = null); break;
            case "class count 0": Json(j => j["classNames"] = new JsonArray()); break;
            case "class count 1": Json(j => j["classNames"] = new JsonArray("airplane")); break;
            case "class count 3, weights for 10": Json(j => j["classNames"] = new JsonArray("airplane", "automobile", "bird")); break;
            case "mean missing": Json(j => j.Remove("mean")); break;
            case "std null": Json(j => j["std"] = null); break;
            case "mean of 1 value for 3 channels": Json(j => j["mean"] = new JsonArray(125.3)); break;
            case "std with a zero": Json(j => j["std"] = new JsonArray(63.0, 0.0, 66.7)); break;
            case "channels 0": Json(j => j["channels"] = 0); break;
            case "height -32": Json(j => j["height"] = -32); break;
            case "channels 1 (rank differs from the weights)": Json(j => j["channels"] = 1); break;
            case "format version 1": Json(j => j["formatVersion"] = 1); break;
            case "format version 3": Json(j => j["formatVersion"] = 3); break;
            case "label value type unknown": Json(j => j["labelValueType"] = "Quaternion"); break;
            case "label value type Boolean with text class names": Json(j => j["labelValueType"] = "Boolean"); break;
            case "weights CRC mismatch (compressed byte flipped)": HostileZip.FlipCompressedByte(target, Weights); break;
            case "metadata CRC mismatch (recorded CRC altered)": HostileZip.SetField(target, Metadata, 16, 14, 0xDEADBEEF); break;
            case "weights truncated (valid zip)": HostileZip.Edit(target, (name, content) => name == Weights ? content[..(content.Length / 2)] : content); break;
            case "weights replaced by random bytes (valid zip)":
                HostileZip.Edit(target, (name, content) => name == Weights ? RandomBytes(content.Length) : content);
                break;
            case "weights entry declares 2 GiB": HostileZip.SetField(target, Weights, 24, 22, 0x7FFFFFFF); break;
            case "metadata deflate bomb (128 MiB)":
                // Valid JSON up to an architecture name of 128 MiB.
                HostileZip.ReplaceWithBomb(target, Metadata, "{\"formatVersion\": 2, \"architecture\": \""u8.ToArray(), (byte)'a', 128L << 20, "\"}"u8.ToArray());
                break;
            case "weights deflate bomb (128 MiB)":
                HostileZip.ReplaceWithBomb(target, Weights, [], 0, 128L << 20, []);
                break;
            case "overlapping-entry zip bomb (16 GiB)":
                File.Delete(target);
                HostileZip.WriteOverlappingBomb(source, target, kernelBytes: 64L << 20, references: 256);
                break;
            case "input shape 1x100000x100000": Json(j => { j["channels"] = 1; j["height"] = 100000; j["width"] = 100000; }); break;
            case "input shape 3x100000x100000": Json(j => { j["height"] = 100000; j["width"] = 100000; }); break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }
    }

    /// <summary>Writes <paramref name="target"/> as a copy of the valid ML.NET zip with <paramref name="damage"/>.</summary>
    private static void DamageMlNetZip(string source, string target, string damage)
    {
        File.Copy(source, target);
        string onnxEntry = HostileZip.Read(target).Select(e => e.Name).Single(n => n.EndsWith("OnnxModel", StringComparison.Ordinal) && IsXNetOnnx(target, n));
        void Metadata(Action<Google.Protobuf.Collections.RepeatedField<StringStringEntryProto>> edit) => EditOnnx(target, onnxEntry, edit);
        void Set(string key, string value) => Metadata(m => m.Single(p => p.Key == key).Value = value);
        switch (damage)
        {
            case "truncated to half": HostileCases.Truncate(target, new FileInfo(target).Length / 2); break;
            case "OnnxModel CRC mismatch (compressed byte flipped)": HostileZip.FlipCompressedByte(target, onnxEntry); break;
            case "OnnxModel length prefix wrong (valid zip)":
                HostileZip.Edit(target, (name, content) => name == onnxEntry ? [.. BitConverter.GetBytes(content.Length * 3), .. content.AsSpan(4)] : content);
                break;
            case "OnnxModel protobuf garbage (valid zip)":
                HostileZip.Edit(target, (name, content) => name == onnxEntry ? [.. BitConverter.GetBytes(4096), .. RandomBytes(4096)] : content);
                break;
            case "Model.key entries removed": HostileZip.Edit(target, (name, content) => name.EndsWith("Model.key", StringComparison.Ordinal) ? null : content); break;
            case "architecture metadata removed": Metadata(m => m.Remove(m.Single(p => p.Key == "xnet.architecture"))); break;
            case "input shape of rank 2": Set("xnet.input_shape", "[3,32]"); break;
            case "input shape 0x32x32": Set("xnet.input_shape", "[0,32,32]"); break;
            case "input shape 3x100000x100000": Set("xnet.input_shape", "[3,100000,100000]"); break;
            case "class names empty (0 classes)": Set("xnet.class_names", "[]"); break;
            case "class names 3 for 10 outputs": Set("xnet.class_names", "[\"airplane\",\"automobile\",\"bird\"]"); break;
            case "class names not JSON": Set("xnet.class_names", "airplane, automobile"); break;
            case "embedded X-Net file damaged": Set("xnet.model", "this is not base64!"); break;
            case "embedded X-Net file removed": Metadata(m => m.Remove(m.Single(p => p.Key == "xnet.model"))); break;
            case "overlapping-entry zip bomb (16 GiB)":
                File.Delete(target);
                HostileZip.WriteOverlappingBomb(source, target, kernelBytes: 64L << 20, references: 256);
                break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }
    }

    private static bool IsXNetOnnx(string zip, string entry) =>
        ParseOnnx(HostileZip.Read(zip).Single(e => e.Name == entry).Content).MetadataProps.Any(p => p.Key == "xnet.architecture");

    /// <summary>ML.NET stores the ONNX model with an Int32 (or Int64) length prefix.</summary>
    private static ModelProto ParseOnnx(byte[] content) =>
        ModelProto.Parser.ParseFrom(content.AsSpan(BitConverter.ToInt32(content) == content.Length - 4 ? 4 : 8));

    private static void EditOnnx(string zip, string entry, Action<Google.Protobuf.Collections.RepeatedField<StringStringEntryProto>> edit) =>
        HostileZip.Edit(zip, (name, content) =>
        {
            if (name != entry)
            {
                return content;
            }

            bool int32 = BitConverter.ToInt32(content) == content.Length - 4;
            var onnx = ParseOnnx(content);
            edit(onnx.MetadataProps);
            byte[] bytes = onnx.ToByteArray();
            return int32 ? [.. BitConverter.GetBytes(bytes.Length), .. bytes] : [.. BitConverter.GetBytes((long)bytes.Length), .. bytes];
        });

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(42).NextBytes(bytes);
        return bytes;
    }
}
