using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using XNet.Architectures;
using XNet.MLNet.IO;

namespace XNet.MLNet.Training;

/// <summary>What a checkpoint's network is; a run resumes only from a checkpoint of the same identity.</summary>
/// <param name="Architecture">Zoo name.</param>
/// <param name="InputShape">Input image shape.</param>
/// <param name="ClassNames">Class names, in label-key order.</param>
public sealed record ModelIdentity(string Architecture, ImageShape InputShape, IReadOnlyList<string> ClassNames)
{
    /// <summary>Whether both describe the same network (architecture names compare case-insensitively).</summary>
    public bool Matches(ModelIdentity other) =>
        string.Equals(Architecture, other.Architecture, StringComparison.OrdinalIgnoreCase) && InputShape == other.InputShape
        && ClassNames.SequenceEqual(other.ClassNames);

    /// <inheritdoc />
    public override string ToString() => $"{Architecture} on {InputShape} images, {ClassNames.Count} classes";
}

/// <summary>
/// A training checkpoint: the options the run was started with, the weights and graphs, the optimizer state, the position (epoch and batch, with the running
/// sums of the epoch so far), the random-number state, the metrics history and the best validation result. One zip file
/// whose binary entries are checked against SHA-256 digests kept in its manifest, written atomically.
/// </summary>
public sealed class TrainingCheckpoint
{
    /// <summary>File extension of checkpoints.</summary>
    public const string Extension = ".xckpt";

    /// <summary>File name of the best validation checkpoint in a checkpoint folder.</summary>
    public const string BestFileName = "best" + Extension;

    private const int FormatVersion = 2;
    private const string ManifestEntry = "checkpoint.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private TrainingCheckpoint(string path, Manifest manifest)
    {
        Path = path;
        Identity = new ModelIdentity(manifest.Architecture,
            new ImageShape(manifest.Channels, manifest.Height, manifest.Width).Validate("its input"), manifest.ClassNames);
        Options = manifest.Options.Deserialize<XNetTrainer.Options>(XNetTrainer.Options.Json)
                  ?? throw new InvalidDataException("its options are null");
        Options.Validate(); // a damaged value is the checkpoint's fault, not a flag's: ArgumentException becomes InvalidDataException in Read
        Epoch = manifest.Epoch;
        Batch = manifest.Batch;
        Progress = manifest.Progress;
        History = manifest.History;
        BestEpoch = manifest.BestEpoch;
        TrainingImages = manifest.TrainingImages;
        Digests = manifest.Sha256;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>The network it holds.</summary>
    public ModelIdentity Identity { get; }

    /// <summary>
    /// The training settings of the run (architecture, schedule, augmentation, normalisation, seed, ...; not its columns,
    /// device or callbacks): a run resumed from this checkpoint trains with them.
    /// </summary>
    public XNetTrainer.Options Options { get; }

    /// <summary>The training seed of the run (data order, augmentation, graphs).</summary>
    public int Seed => Options.Seed ?? 0;

    /// <summary>0-based epoch the run continues in.</summary>
    public int Epoch { get; }

    /// <summary>Batches of <see cref="Epoch"/> already trained (0 at an epoch boundary).</summary>
    public int Batch { get; }

    /// <summary>Metrics of the completed epochs.</summary>
    public IReadOnlyList<EpochMetrics> History { get; }

    /// <summary>1-based epoch of the best validation accuracy whose weights are kept (KeepBestValidationModel), if any.</summary>
    public int? BestEpoch { get; }

    /// <summary>How many images the run trains on (its training set after any validation split); null in checkpoints written before it was recorded.</summary>
    public int? TrainingImages { get; }

    internal EpochProgress Progress { get; }

    private IReadOnlyDictionary<string, string> Digests { get; }

    /// <summary>Whether the checkpoint holds the binary entry <paramref name="name"/>.</summary>
    internal bool Holds(string name) => Digests.ContainsKey(name);

    /// <summary>
    /// The binary entry <paramref name="name"/>, read only now and only when it is at most <paramref name="maxBytes"/> long
    /// (the caller knows what the network it restores can hold), then checked against its digest again.
    /// </summary>
    /// <exception cref="InvalidDataException">When it is missing, larger than that, or altered; the message names the file.</exception>
    internal byte[] Blob(string name, long maxBytes)
    {
        using var zip = ZipFile.OpenRead(Path);
        var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"Checkpoint '{Path}' has no '{name}' entry.");
        if (entry.Length > maxBytes)
        {
            throw new InvalidDataException($"Checkpoint '{Path}': '{name}' holds {entry.Length:N0} bytes; the network it restores needs at most {maxBytes:N0}.");
        }

        var bytes = new byte[entry.Length];
        using (var stream = entry.Open())
        {
            stream.ReadExactly(bytes);
        }

        return string.Equals(Convert.ToHexString(SHA256.HashData(bytes)), Digests[name], StringComparison.OrdinalIgnoreCase) ? bytes
            : throw new InvalidDataException($"Checkpoint '{Path}': the SHA-256 of '{name}' does not match its manifest (the file was altered).");
    }

    /// <summary>Reads and verifies a checkpoint.</summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When it is truncated, tampered with or not a checkpoint; the message names the file.</exception>
    public static TrainingCheckpoint Read(string path)
    {
        if (!File.Exists(path))
        {
            throw IO.MissingPath.File("Checkpoint", path);
        }

        try
        {
            if (new FileInfo(path).Length == 0)
            {
                throw new InvalidDataException("it is empty or not a regular file");
            }

            using var zip = ZipFile.OpenRead(path);
            ZipIntegrity.Verify(zip);
            var manifestEntry = zip.GetEntry(ManifestEntry) ?? throw new InvalidDataException($"it has no '{ManifestEntry}'");
            Manifest manifest;
            using (var stream = manifestEntry.Open())
            {
                manifest = JsonSerializer.Deserialize<Manifest>(stream, Json) ?? throw new InvalidDataException($"'{ManifestEntry}' is empty");
            }

            if (manifest.FormatVersion != FormatVersion)
            {
                throw new InvalidDataException(
                    $"its format version is {manifest.FormatVersion}; this library reads {FormatVersion} (version 2 records the run's options " +
                    "and renamed the layers): start that run again");
            }

            if (manifest.Architecture is null || manifest.ClassNames is null || manifest.Options.ValueKind != JsonValueKind.Object
                || manifest.Progress is null || manifest.History is null || manifest.Sha256 is null || manifest.Epoch < 0 || manifest.Batch < 0)
            {
                throw new InvalidDataException(
                    $"'{ManifestEntry}' lacks its architecture, class names, options, progress, history or digests, or records a negative position");
            }

            foreach (var (name, digest) in manifest.Sha256)
            {
                // Checked as it streams, so a damaged or inflated entry is refused before anything of its size is held; the
                // entries are read when the run is restored, against the sizes its network allows.
                var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"it has no '{name}' entry");
                using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
                using (var stream = entry.Open())
                {
                    var buffer = new byte[1 << 16];
                    for (int read; (read = stream.Read(buffer)) > 0;)
                    {
                        hash.AppendData(buffer, 0, read);
                    }

                    if (!string.Equals(Convert.ToHexString(hash.GetHashAndReset()), digest, StringComparison.OrdinalIgnoreCase))
                    {
                        throw new InvalidDataException($"the SHA-256 of '{name}' does not match its manifest (the file was altered or damaged)");
                    }
                }

            }

            return new TrainingCheckpoint(path, manifest);
        }
        catch (Exception ex) when (ex is InvalidDataException or JsonException or NotSupportedException or ArgumentException
                                       or IOException && ex is not FileNotFoundException)
        {
            throw new InvalidDataException($"'{path}' is not a valid X-Net checkpoint: {ex.Message}.", ex);
        }
    }

    /// <summary>
    /// The newest valid checkpoint in a folder (a run folder, its <c>checkpoints</c> folder) or the given file; invalid ones
    /// (a crash while writing cannot leave one, but a damaged disk can) are reported through <paramref name="rejected"/>
    /// and skipped. Null when there is none.
    /// </summary>
    public static TrainingCheckpoint? FindNewestValid(string path, Action<string, string>? rejected = null)
    {
        if (File.Exists(path))
        {
            return Read(path);
        }

        string directory = System.IO.Directory.Exists(RunFolder.CheckpointsOf(path))
            ? RunFolder.CheckpointsOf(path)
            : path;
        foreach (string file in CheckpointStore.Newest(directory))
        {
            try
            {
                return Read(file);
            }
            catch (InvalidDataException ex)
            {
                rejected?.Invoke(file, ex.Message);
            }
        }

        return null;
    }

    internal static void Write(Stream stream, ModelIdentity identity, XNetTrainer.Options options, int trainingImages, int epoch, int batch,
        EpochProgress progress, IReadOnlyList<EpochMetrics> history, int? bestEpoch, IReadOnlyDictionary<string, byte[]> blobs)
    {
        var manifest = new Manifest(FormatVersion, identity.Architecture, identity.InputShape.Channels, identity.InputShape.Height,
            identity.InputShape.Width, identity.ClassNames.ToArray(),
            JsonSerializer.SerializeToElement(options, XNetTrainer.Options.Json), epoch, batch, progress, history.ToArray(), bestEpoch,
            blobs.ToDictionary(b => b.Key, b => Convert.ToHexString(SHA256.HashData(b.Value))), trainingImages);
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        using (var entry = zip.CreateEntry(ManifestEntry).Open())
        {
            JsonSerializer.Serialize(entry, manifest, Json);
        }

        foreach (var (name, bytes) in blobs)
        {
            using var entry = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
            entry.Write(bytes);
        }
    }

    private sealed record Manifest(int FormatVersion, string Architecture, int Channels, int Height, int Width, string[] ClassNames,
        JsonElement Options, int Epoch, int Batch, EpochProgress Progress, EpochMetrics[] History, int? BestEpoch,
        Dictionary<string, string> Sha256, int? TrainingImages);
}

/// <summary>The running sums of an epoch in progress, so a run resumed within it reports the same epoch metrics.</summary>
/// <param name="LossSum">Sum of per-image losses so far.</param>
/// <param name="Correct">Top-1 hits so far.</param>
/// <param name="CorrectTop5">Top-5 hits so far.</param>
/// <param name="Seen">Images so far.</param>
/// <param name="ElapsedSeconds">Training time of the whole run so far.</param>
internal sealed record EpochProgress(double LossSum, long Correct, long CorrectTop5, long Seen, double ElapsedSeconds)
{
    public static EpochProgress Start(double elapsedSeconds) => new(0, 0, 0, 0, elapsedSeconds);
}
