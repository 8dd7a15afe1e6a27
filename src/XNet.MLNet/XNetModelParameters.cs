using System.IO.Compression;
using System.Text.Json;
using TorchSharp;
using XNet.Architectures;
using XNet.Architectures.Layers;
using Microsoft.ML.Data;
using XNet.MLNet.Data;
using XNet.MLNet.IO;
using XNet.MLNet.Training;
using static TorchSharp.torch;

namespace XNet.MLNet;

/// <summary>
/// A trained X-Net: the network (with its input normalisation and expander graphs), the architecture it was built
/// from, its input shape and its class names. Saved as one file: a zip of <c>xnet-model.json</c> (metadata) and
/// <c>weights.bin</c> (TorchSharp state dict, expander index tables included).
/// </summary>
public sealed partial class XNetModelParameters : IDisposable
{
    private const string MetadataEntry = "xnet-model.json";
    private const string WeightsEntry = "weights.bin";
    private const long MaxMetadataBytes = 16L << 20;
    // Version 2: a convolution and its batch norm are one module (conv1.weight -> conv1.0.weight, bn1.* -> conv1.1.*).
    private const int FormatVersion = 2;
    private static readonly DateTimeOffset FixedEntryTime = new(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly nn.Module<Tensor, Tensor> classifier;
    private readonly object inferenceGate = new();
    private bool disposed;

    private XNetModelParameters(string architecture, long seed, ImageShape inputShape, IReadOnlyList<string> classNames,
        string labelValueType, nn.Module<Tensor, Tensor> classifier, Normalize normalize, Device device)
    {
        Architecture = architecture;
        Seed = seed;
        InputShape = inputShape;
        ClassNames = classNames;
        LabelValueTypeName = labelValueType;
        // Scoring and the trainer's validation run in evaluation mode without gradients: fold the batch norms there.
        this.classifier = classifier.FoldBatchNormsInInference();
        ChannelMean = normalize.Mean;
        ChannelStd = normalize.Std;
        Device = device;
    }

    /// <summary>The zoo name of the architecture (for example <c>x-resnet-20-4</c>).</summary>
    public string Architecture { get; }

    /// <summary>The model seed the expander graphs were drawn from.</summary>
    public long Seed { get; }

    /// <summary>Input image shape, channels-first.</summary>
    public ImageShape InputShape { get; }

    /// <summary>Number of classes.</summary>
    public int NumberOfClasses => ClassNames.Count;

    /// <summary>
    /// Class names, in the order of the label's key values (slot i of Score is class i): the key values as invariant
    /// text (the keys 1..N when the label had none).
    /// </summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>
    /// The ML.NET type of the label's key values (text, <c>UInt32</c>, <c>Int64</c>, <c>Boolean</c>, ...): PredictedLabel
    /// carries <see cref="ClassNames"/> as key values of this type, so <c>MapKeyToValue</c> gives back the label's own values.
    /// </summary>
    public DataViewType LabelValueType => LabelKeyValues.ItemType(LabelValueTypeName);

    /// <summary>The name of <see cref="LabelValueType"/> as the model file stores it.</summary>
    internal string LabelValueTypeName { get; }

    /// <summary>Per-channel mean the network subtracts from raw pixels.</summary>
    public IReadOnlyList<float> ChannelMean { get; }

    /// <summary>Per-channel standard deviation the network divides by.</summary>
    public IReadOnlyList<float> ChannelStd { get; }

    /// <summary>The device the network lives on.</summary>
    public Device Device { get; private set; }

    /// <summary>Trainable parameters: expander layers count only their present connections.</summary>
    public long ParameterCount => classifier.parameters().Sum(p => p.numel());

    /// <summary>The network from raw (B, C, H, W) pixels to (B, classes) logits.</summary>
    internal nn.Module<Tensor, Tensor> Network => classifier;

    /// <summary>Builds an untrained model: normalisation from <paramref name="mean"/>/<paramref name="std"/>, then the zoo network.</summary>
    internal static XNetModelParameters Create(string architecture, long seed, ImageShape inputShape, IReadOnlyList<string> classNames,
        string labelValueType, IReadOnlyList<float> mean, IReadOnlyList<float> std, Device device)
    {
        LabelKeyValues.Check(labelValueType, classNames);
        if (mean.Count != inputShape.Channels)
        {
            throw new ArgumentException($"the normalisation has {mean.Count} channel(s) but the input {inputShape} has {inputShape.Channels}");
        }

        var normalize = new Normalize(mean, std);
        var network = ModelZoo.Create(architecture, inputShape, classNames.Count, seed);
        var classifier = nn.Sequential(("normalize", normalize), ("network", network));
        var model = new XNetModelParameters(architecture, seed, inputShape, classNames, labelValueType, classifier, normalize, CPU);
        model.MoveTo(device);
        classifier.eval();
        return model;
    }

    /// <summary>Writes the model to <paramref name="path"/> atomically (a temporary file beside it, then a rename).</summary>
    internal void Save(string path)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        AtomicFile.Write(path, Save);
    }

    /// <summary>Writes the model to a stream (left open).</summary>
    internal void Save(Stream stream)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        using var weights = new MemoryStream();
        using (var writer = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            classifier.save(writer);
        }

        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        var metadata = new ModelMetadata(FormatVersion, Architecture, Seed, InputShape.Channels, InputShape.Height, InputShape.Width,
            ClassNames.ToArray(), ChannelMean.ToArray(), ChannelStd.ToArray(), LabelValueTypeName, Digest(weights));
        // Entries carry a fixed time, so the same model always gives the same bytes (and so do the ONNX export and the
        // ML.NET zip that embed this file).
        var metadataEntry = zip.CreateEntry(MetadataEntry);
        metadataEntry.LastWriteTime = FixedEntryTime;
        using (var entry = metadataEntry.Open())
        {
            JsonSerializer.Serialize(entry, metadata, MetadataJson.Options);
        }

        var weightsEntry = zip.CreateEntry(WeightsEntry, CompressionLevel.Fastest);
        weightsEntry.LastWriteTime = FixedEntryTime;
        using var entryStream = weightsEntry.Open();
        weights.Position = 0;
        weights.CopyTo(entryStream);
    }

    /// <summary>The SHA-256 of the weights as the metadata records it, so altered weights are refused even with a matching CRC-32.</summary>
    private static string Digest(MemoryStream weights) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(weights.GetBuffer().AsSpan(0, (int)weights.Length)));

    /// <summary>Reads a model written by <see cref="Save(string)"/>.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="device">Where to load it: <c>auto</c> (default), <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>.</param>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When the file is not an X-Net model; the message names the file.</exception>
    internal static XNetModelParameters Load(string path, string? device = null)
    {
        if (!File.Exists(path))
        {
            throw IO.MissingPath.File("X-Net model file", path);
        }

        using var file = File.OpenRead(path);
        return LoadCore(file, device, path);
    }


    /// <summary>Reads a model from a stream; <paramref name="source"/> names it in error messages.</summary>
    internal static XNetModelParameters Load(Stream stream, string? device, string source) => LoadCore(stream, device, source);

    private static XNetModelParameters LoadCore(Stream stream, string? device, string source)
    {
        XNetModelParameters? model = null;
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            ZipIntegrity.Verify(zip);
            var metadataEntry = zip.GetEntry(MetadataEntry) ?? throw new InvalidDataException($"it has no '{MetadataEntry}' entry");
            var weightsEntry = zip.GetEntry(WeightsEntry) ?? throw new InvalidDataException($"it has no '{WeightsEntry}' entry");
            if (metadataEntry.Length > MaxMetadataBytes)
            {
                throw new InvalidDataException($"'{MetadataEntry}' declares {metadataEntry.Length:N0} bytes, more than the {MaxMetadataBytes:N0} metadata may hold");
            }

            ModelMetadata metadata;
            using (var entry = metadataEntry.Open())
            {
                metadata = JsonSerializer.Deserialize<ModelMetadata>(entry, MetadataJson.Options)
                           ?? throw new InvalidDataException($"'{MetadataEntry}' is empty");
            }

            if (metadata.Architecture is null || metadata.ClassNames is null || metadata.Mean is null || metadata.Std is null)
            {
                throw new InvalidDataException($"'{MetadataEntry}' lacks its architecture, classNames, mean or std");
            }

            if (metadata.FormatVersion != FormatVersion)
            {
                throw new InvalidDataException(
                    $"its format version is {metadata.FormatVersion}; this library reads version {FormatVersion} (version 2 renamed the layers: " +
                    "a convolution and its batch norm became one module); retrain it, or load it with the release that wrote it");
            }

            // The zoo checks the shape, class count and normalisation before it allocates anything of their size.
            string labelValueType = metadata.LabelValueType ?? LabelKeyValues.Text;
            LabelKeyValues.Check(labelValueType, metadata.ClassNames);
            model = Create(metadata.Architecture, metadata.Seed, new ImageShape(metadata.Channels, metadata.Height, metadata.Width),
                metadata.ClassNames, labelValueType, metadata.Mean, metadata.Std, CPU);

            // The weights hold the network's tensors and their names; far more than that is a damaged or hostile file.
            long bound = model.classifier.state_dict().Values.Sum(t => t.numel()) * sizeof(long) + (1 << 20);
            if (weightsEntry.Length > bound)
            {
                throw new InvalidDataException($"'{WeightsEntry}' declares {weightsEntry.Length:N0} bytes; a {metadata.Architecture} holds at most {bound:N0}");
            }

            using var weights = new MemoryStream((int)weightsEntry.Length);
            using (var entry = weightsEntry.Open())
            {
                entry.CopyTo(weights);
            }

            if (metadata.WeightsSha256 is string digest && !string.Equals(digest, Digest(weights), StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidDataException($"the SHA-256 of '{WeightsEntry}' does not match its metadata (the file was altered or damaged)");
            }

            weights.Position = 0;
            using var reader = new BinaryReader(weights);
            try
            {
                model.classifier.load(reader);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or EndOfStreamException or IOException)
            {
                throw new InvalidDataException($"its weights do not fit {metadata.Architecture}: {ex.Message}", ex);
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or JsonException or ArgumentException or IOException)
        {
            model?.Dispose();
            throw new InvalidDataException($"'{source}' is not an X-Net model file: {ex.Message.TrimEnd('.')}.", ex);
        }

        model.MoveTo(TorchDevices.Resolve(device));
        return model;
    }

    /// <summary>Moves the network to <paramref name="device"/>.</summary>
    internal void MoveTo(Device device)
    {
        classifier.to(device);
        Device = device;
    }

    /// <summary>Class probabilities of <paramref name="count"/> images given as raw channels-first pixels.</summary>
    internal void Predict(ReadOnlySpan<float> pixels, int count, Span<float> probabilities)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var batch = pixels[..(count * InputShape.Size)].ToArray();
        lock (inferenceGate)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            classifier.eval();
            var input = tensor(batch, new long[] { count, InputShape.Channels, InputShape.Height, InputShape.Width }).to(Device);
            var output = nn.functional.softmax(classifier.forward(input), 1).cpu();
            output.data<float>().CopyTo(probabilities[..(count * NumberOfClasses)]);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!disposed)
        {
            disposed = true;
            classifier.Dispose();
        }
    }

    private sealed record ModelMetadata(int FormatVersion, string Architecture, long Seed, int Channels, int Height, int Width,
        string[] ClassNames, float[] Mean, float[] Std, string? LabelValueType = null, string? WeightsSha256 = null);

    private static class MetadataJson
    {
        public static readonly JsonSerializerOptions Options = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
    }
}
