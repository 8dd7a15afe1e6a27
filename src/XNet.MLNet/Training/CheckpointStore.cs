using XNet.MLNet.IO;

namespace XNet.MLNet.Training;

/// <summary>
/// The checkpoint folder of a run: files named by position (<c>checkpoint-EEEE-BBBBBB.xckpt</c>, epoch and batch, so
/// that names sort by age), written atomically, pruned to the newest <see cref="XNetTrainer.Options.CheckpointsToKeep"/>,
/// with the best validation checkpoint kept apart as <c>best.xckpt</c>.
/// </summary>
/// <param name="directory">Folder of the checkpoint files.</param>
/// <param name="identity">The network being trained.</param>
internal sealed class CheckpointStore(string directory, ModelIdentity identity)
{
    public const string ModelEntry = "model.bin";
    public const string OptimizerEntry = "optimizer.bin";
    public const string RandomEntry = "rng.bin";
    public const string BestModelEntry = "best-model.bin";

    private const string Prefix = "checkpoint-";

    /// <summary>The folder of the checkpoint files.</summary>
    public string Directory => directory;

    /// <summary>The newest checkpoint written by this store, if any.</summary>
    public string? Latest { get; private set; }

    /// <summary>Every checkpoint file of a folder, <see cref="TrainingCheckpoint.BestFileName"/> included.</summary>
    public static IEnumerable<string> Files(string directory) =>
        Newest(directory).Append(Path.Combine(directory, TrainingCheckpoint.BestFileName)).Where(File.Exists);

    /// <summary>Checkpoint files of a folder, newest first.</summary>
    public static IEnumerable<string> Newest(string directory) =>
        System.IO.Directory.Exists(directory)
            ? System.IO.Directory.EnumerateFiles(directory, Prefix + "*" + TrainingCheckpoint.Extension).OrderByDescending(Path.GetFileName, StringComparer.Ordinal)
            : Enumerable.Empty<string>();

    /// <summary>Writes the checkpoint of position (<paramref name="epoch"/>, <paramref name="batch"/>) and returns its path.</summary>
    public string Save(int epoch, int batch, XNetTrainer.Options options, int trainingImages, EpochProgress progress, IReadOnlyList<EpochMetrics> history,
        int? bestEpoch, IReadOnlyDictionary<string, byte[]> blobs, bool best)
    {
        if (Latest is null)
        {
            System.IO.Directory.CreateDirectory(directory);
            AtomicFile.DeleteStale(directory);
        }

        string path = Path.Combine(directory, $"{Prefix}{epoch:D4}-{batch:D6}{TrainingCheckpoint.Extension}");
        void Write(Stream stream) =>
            TrainingCheckpoint.Write(stream, identity, options, trainingImages, epoch, batch, progress, history, bestEpoch, blobs);
        AtomicFile.Write(path, Write);
        if (best)
        {
            AtomicFile.Write(Path.Combine(directory, TrainingCheckpoint.BestFileName), Write);
        }

        Latest = path;
        foreach (string old in Newest(directory).Skip(options.CheckpointsToKeep))
        {
            File.Delete(old);
        }

        return path;
    }
}
