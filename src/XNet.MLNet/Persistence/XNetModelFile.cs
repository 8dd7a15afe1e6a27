using System.IO.Compression;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML;
using XNet.MLNet.IO;
using XNet.Architectures;
using XNet.MLNet.Onnx;
using XNet.Architectures.Export.Onnx;
using XNet.MLNet.Persistence;

namespace XNet.MLNet;

/// <summary>What a model file holds, told by its content (not its extension).</summary>
public enum XNetModelFileKind
{
    /// <summary>Neither of the two below.</summary>
    Unknown,

    /// <summary>An X-Net model file written by <see cref="XNetModelFile.Save(XNetModelParameters, string)"/> (<c>model.xnet</c>).</summary>
    XNet,

    /// <summary>An ML.NET model zip written by <c>mlContext.Model.Save</c>.</summary>
    MLNet,
}

/// <summary>
/// Every file an X-Net is saved to and loaded from, in one place: the X-Net file (<c>.xnet</c>: architecture, graphs,
/// weights, normalisation, classes), the ML.NET model zip (scored by ML.NET and ONNX Runtime alone; it also carries the
/// X-Net file, so training can continue from it) and the ONNX export. Every write is atomic (a temporary file beside the
/// target, then a rename); reads tell the kinds apart by content, not by extension.
/// </summary>
public static class XNetModelFile
{
    /// <summary>Writes <paramref name="model"/> as an X-Net file (<c>.xnet</c>) atomically.</summary>
    public static void Save(XNetModelParameters model, string path) => Checked(model).Save(path);

    /// <summary>Writes <paramref name="model"/> as an X-Net file to <paramref name="stream"/> (left open).</summary>
    public static void Save(XNetModelParameters model, Stream stream) => Checked(model).Save(stream);

    /// <summary>
    /// Writes the network as an ONNX model (opset 17) atomically. Input <c>input</c>: float32 (batch, C, H, W) raw pixels,
    /// the normalisation is inside the graph; outputs <c>logits</c>, <c>Score</c> (softmax) and <c>PredictedIndex</c>
    /// (uint32 argmax); the batch dimension is symbolic. BatchNorm is folded into the convolution before it where there is
    /// one; expander layers are written as their exact dense-weight equivalent. Metadata: architecture, seed, input shape,
    /// mean/std, class names (JSON) and the library version (keys in <see cref="XNetOnnx"/>). See docs/onnx.md.
    /// </summary>
    /// <exception cref="NotSupportedException">When a layer has no ONNX export; the message names the layer.</exception>
    public static void ExportOnnx(XNetModelParameters model, string path) => Checked(model).ExportOnnx(path);

    /// <summary>Writes the ONNX model (see <see cref="ExportOnnx(XNetModelParameters, string)"/>) to <paramref name="stream"/> (left open).</summary>
    public static void ExportOnnx(XNetModelParameters model, Stream stream) => Checked(model).ExportOnnx(stream);

    private static XNetModelParameters Checked(XNetModelParameters model) => model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>
    /// Reads the X-Net of an <c>.xnet</c> file or of an ML.NET zip saved from a pipeline with an X-Net, ready to score
    /// (<c>new XNetTransformer(model)</c>), to continue training (<see cref="XNetTrainer.Options.InitialModel"/>) or to export.
    /// </summary>
    /// <param name="path">The model file.</param>
    /// <param name="device">Where to load it: <c>auto</c> (default), <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>.</param>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When it holds no X-Net; the message names the file and what was found.</exception>
    public static XNetModelParameters Load(string path, string? device = null)
    {
        switch (Detect(path))
        {
            case XNetModelFileKind.XNet:
                return XNetModelParameters.Load(path, device);
            case XNetModelFileKind.MLNet:
                string base64 = Metadata(ReadOnnx(path), MlNetChain.EmbeddedModelKey)
                    ?? throw new InvalidDataException(
                        $"ML.NET model '{path}' holds an X-Net ONNX model without the embedded X-Net file ('{MlNetChain.EmbeddedModelKey}' metadata).");
                byte[] bytes;
                try
                {
                    bytes = Convert.FromBase64String(base64);
                }
                catch (FormatException ex)
                {
                    throw new InvalidDataException($"ML.NET model '{path}': the embedded X-Net file is damaged ({ex.Message}).", ex);
                }

                using (var stream = new MemoryStream(bytes, writable: false))
                {
                    return XNetModelParameters.Load(stream, device, $"{path} (embedded X-Net)");
                }

            default:
                throw new InvalidDataException(
                    $"'{path}' is neither an X-Net model file (a zip with '{XNetMetadataEntry}') nor an ML.NET model zip; it may be truncated or damaged.");
        }
    }

    /// <summary>Reads an X-Net file from a stream (see <see cref="Save(XNetModelParameters, Stream)"/>).</summary>
    public static XNetModelParameters Load(Stream stream, string? device = null) => XNetModelParameters.Load(stream, device, "stream");

    private const string XNetMetadataEntry = "xnet-model.json";
    private const string OnnxEntryName = "OnnxModel";
    private const string MlNetKeyEntry = "Model.key";

    /// <summary>
    /// Writes <paramref name="model"/> as an ML.NET model zip (<c>mlContext.Model.Save</c>) atomically: a temporary file
    /// beside <paramref name="path"/>, then a rename, so a failed save leaves no partial zip.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The fitted pipeline (one or more X-Nets are saved as ML.NET's own ONNX-based transformers).</param>
    /// <param name="inputSchema">The schema of the data the pipeline takes.</param>
    /// <param name="path">The zip to write.</param>
    public static void SaveMLNet(MLContext mlContext, ITransformer model, DataViewSchema inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(path, stream => mlContext.Model.Save(model, inputSchema, stream));
    }

    /// <summary>
    /// Writes an X-Net alone as an ML.NET model zip (see <see cref="SaveMLNet(MLContext, ITransformer, DataViewSchema, string)"/>);
    /// its input schema is the one feature column, a Single vector of the model's (C, H, W) shape.
    /// </summary>
    public static void SaveMLNet(MLContext mlContext, XNetTransformer model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        var schema = new DataViewSchema.Builder();
        schema.AddColumn(model.FeatureColumnName, model.FeatureColumnType);
        SaveMLNet(mlContext, model, schema.ToSchema(), path);
    }

    /// <summary>Tells the kind of <paramref name="path"/> from its content.</summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    public static XNetModelFileKind Detect(string path)
    {
        try
        {
            using var zip = OpenZip(path, verify: false);
            if (zip.GetEntry(XNetMetadataEntry) is not null)
            {
                return XNetModelFileKind.XNet;
            }

            return zip.Entries.Any(e => e.Name == MlNetKeyEntry) ? XNetModelFileKind.MLNet : XNetModelFileKind.Unknown;
        }
        catch (InvalidDataException)
        {
            return XNetModelFileKind.Unknown;
        }
    }

    /// <summary>The architecture, input shape and class names of the X-Net in an ML.NET zip, read from its ONNX metadata (no TorchSharp involved).</summary>
    /// <exception cref="InvalidDataException">When the zip holds no X-Net ONNX model; the message names the file.</exception>
    public static (string Architecture, ImageShape InputShape, IReadOnlyList<string> ClassNames) ReadMLNetInfo(string path)
    {
        var onnx = ReadOnnx(path);
        try
        {
            var dims = JsonSerializer.Deserialize<int[]>(Metadata(onnx, XNetOnnx.InputShapeKey) ?? "null");
            var names = JsonSerializer.Deserialize<string[]>(Metadata(onnx, XNetOnnx.ClassNamesKey) ?? "null");
            string? architecture = Metadata(onnx, XNetOnnx.ArchitectureKey);
            if (dims is not { Length: 3 } || names is null || architecture is null)
            {
                throw new InvalidDataException("missing metadata");
            }

            long outputs = onnx.Graph.Output.FirstOrDefault(o => o.Name == XNetOnnx.Score)?.Type?.TensorType?.Shape?.Dim.LastOrDefault()?.DimValue ?? 0;
            if (names.Length < 2 || names.Length != outputs)
            {
                throw new InvalidDataException($"its {names.Length} class names do not match the network's {outputs} scores");
            }

            return (architecture, new ImageShape(dims[0], dims[1], dims[2]).Validate("its input"), names);
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException(
                $"ML.NET model '{path}': its X-Net ONNX model lacks valid '{XNetOnnx.InputShapeKey}', '{XNetOnnx.ClassNamesKey}' or " +
                $"'{XNetOnnx.ArchitectureKey}' metadata ({ex.Message}).", ex);
        }
    }

    /// <summary>The one ONNX model of an X-Net in the ML.NET zip at <paramref name="path"/>.</summary>
    internal static ModelProto ReadOnnx(string path)
    {
        var found = new List<ModelProto>();
        try
        {
            using var zip = OpenZip(path);
            foreach (var entry in zip.Entries.Where(e => e.Name == OnnxEntryName))
            {
                var onnx = ParseOnnx(entry);
                if (Metadata(onnx, XNetOnnx.ArchitectureKey) is not null)
                {
                    found.Add(onnx);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or InvalidProtocolBufferException or IOException and not FileNotFoundException)
        {
            throw new InvalidDataException($"ML.NET model '{path}' cannot be read; it may be truncated or damaged: {ex.Message}", ex);
        }

        return found.Count switch
        {
            1 => found[0],
            0 => throw new InvalidDataException(
                $"ML.NET model '{path}' holds no X-Net: no ONNX model with '{XNetOnnx.ArchitectureKey}' metadata (was the pipeline saved with an X-Net in it?)."),
            _ => throw new InvalidDataException(
                $"ML.NET model '{path}' holds {found.Count} X-Nets; expected one. Save each X-Net with XNetModelFile.Save(transformer.Model, \"model.xnet\")."),
        };
    }

    /// <summary>Opens a zip; with <paramref name="verify"/>, after checking every entry's CRC-32.</summary>
    private static ZipArchive OpenZip(string path, bool verify = true)
    {
        if (!File.Exists(path))
        {
            throw IO.MissingPath.File("Model file", path);
        }

        if (new FileInfo(path).Length == 0)
        {
            // Also what a pipe or a device reports: opening one would wait for a writer forever.
            throw new InvalidDataException($"model file '{path}' is empty or not a regular file");
        }

        var zip = ZipFile.OpenRead(path);
        try
        {
            if (verify)
            {
                ZipIntegrity.Verify(zip);
            }

            return zip;
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    // ML.NET writes the binary stream "OnnxModel" as a length-prefixed byte array (an Int32 count, or an Int64 one for large models).
    private static ModelProto ParseOnnx(ZipArchiveEntry entry)
    {
        using var stream = entry.Open();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (bytes.Length >= 4 && BitConverter.ToInt32(bytes.Span[..4]) == bytes.Length - 4)
        {
            bytes = bytes[4..];
        }
        else if (bytes.Length >= 8 && BitConverter.ToInt64(bytes.Span[..8]) == bytes.Length - 8)
        {
            bytes = bytes[8..];
        }
        else
        {
            throw new InvalidDataException($"entry '{entry.FullName}' has a length prefix that does not match its size {bytes.Length}");
        }

        return ModelProto.Parser.ParseFrom(bytes.Span);
    }

    private static string? Metadata(ModelProto onnx, string key) =>
        onnx.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value;
}
