using System.Globalization;
using XNet.MLNet.IO;
using XNet.MLNet.Training;

namespace XNet.MLNet;

/// <summary>
/// The folder of one training run (<see cref="XNetTrainer.Options.WorkspacePath"/>, <c>xnet train --output-dir</c>): the
/// trained model (<see cref="ModelFileName"/>), the per-epoch metrics (<see cref="MetricsFileName"/>), the checkpoints
/// (<see cref="CheckpointsFolderName"/>/, each carrying the run's options and full history) and, from the command line,
/// the training curves (<see cref="CurvesFileName"/>). Every file is written atomically. While a run trains it holds
/// the folder's lock, so a second run cannot share it silently; a new run (not a resume) in the folder of an earlier one
/// removes that run's checkpoints, model and metrics first, so the two never mix.
/// </summary>
public sealed class RunFolder : IDisposable
{
    /// <summary>The trained model, for <c>xnet predict</c>, <c>xnet evaluate</c> and <see cref="XNetModelFile"/>.</summary>
    public const string ModelFileName = "model.xnet";

    /// <summary>One line per epoch: losses, top-1 and top-5 accuracies, the best validation accuracy so far, rate, speed.</summary>
    public const string MetricsFileName = "metrics.csv";

    /// <summary>The training curves plot the command line draws from the metrics.</summary>
    public const string CurvesFileName = "training-curves.png";

    /// <summary>The checkpoints: <c>checkpoint-EEEE-BBBBBB.xckpt</c> and <c>best.xckpt</c>.</summary>
    public const string CheckpointsFolderName = "checkpoints";

    private const string LockFileName = "run.lock";

    /// <summary>The header of <see cref="MetricsFileName"/>.</summary>
    internal const string MetricsHeader =
        "epoch,train_loss,train_accuracy,train_top5_accuracy,validation_loss,validation_accuracy,validation_top5_accuracy," +
        "best_validation_accuracy,best_validation_epoch,learning_rate,images_per_second,elapsed_seconds";

    private readonly FileStream runLock;

    private RunFolder(string path, FileStream runLock)
    {
        Path = path;
        this.runLock = runLock;
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>Where the checkpoints of the run go.</summary>
    public string CheckpointsPath => CheckpointsOf(Path);

    /// <summary>The checkpoints folder of the run folder <paramref name="path"/>.</summary>
    public static string CheckpointsOf(string path) => System.IO.Path.Combine(path, CheckpointsFolderName);

    /// <summary>The run folder a checkpoint belongs to: the parent of its <see cref="CheckpointsFolderName"/> folder, else its own folder.</summary>
    public static string Containing(TrainingCheckpoint checkpoint)
    {
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(checkpoint.Path))!;
        return System.IO.Path.GetFileName(folder) == CheckpointsFolderName ? System.IO.Path.GetDirectoryName(folder)! : folder;
    }

    /// <summary>
    /// Takes <paramref name="path"/> for a run: creates it and holds its lock until disposed (or the process ends). A new run
    /// (<paramref name="resuming"/> false) in the folder of an earlier run removes that run's files first, saying so.
    /// </summary>
    /// <exception cref="IOException">When another run holds the folder, or it cannot be a run folder; nothing in it is changed.</exception>
    internal static RunFolder Open(string path, bool resuming, Action<string> log)
    {
        string lockPath = System.IO.Path.Combine(path, LockFileName);
        FileStream runLock;
        try
        {
            Directory.CreateDirectory(path);
            if (File.Exists(CheckpointsOf(path)))
            {
                throw new IOException($"'{CheckpointsOf(path)}' is a file where the run's checkpoints folder belongs");
            }

            runLock = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException ex) when (File.Exists(lockPath) && !Directory.Exists(lockPath))
        {
            throw new IOException(
                $"Run folder '{path}' is in use by another training run (it holds '{LockFileName}'); wait for that run to end or choose another folder.",
                ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Run folder '{path}' cannot be used: {ex.Message}", ex);
        }

        var folder = new RunFolder(path, runLock);
        if (!resuming)
        {
            folder.RemoveEarlierRun(log);
        }

        return folder;
    }

    /// <summary>Writes the trained model and the metrics of every epoch.</summary>
    internal void WriteResult(XNetModelParameters model, TrainingHistory history)
    {
        model.Save(System.IO.Path.Combine(Path, ModelFileName));
        AtomicFile.WriteAllLines(System.IO.Path.Combine(Path, MetricsFileName), MetricsLines(history));
    }

    /// <summary>
    /// The lines of <see cref="MetricsFileName"/>: the header, then one line per epoch with the best validation accuracy so
    /// far and its epoch (empty without a validation set).
    /// </summary>
    internal static IEnumerable<string> MetricsLines(TrainingHistory history)
    {
        yield return MetricsHeader;
        EpochMetrics? best = null;
        foreach (var m in history)
        {
            if (m.ValidationAccuracy is double accuracy && (best is null || accuracy > best.ValidationAccuracy))
            {
                best = m;
            }

            yield return string.Create(CultureInfo.InvariantCulture,
                $"{m.Epoch},{m.TrainLoss:R},{m.TrainAccuracy:R},{m.TrainTop5Accuracy:R},{Optional(m.ValidationLoss)}," +
                $"{Optional(m.ValidationAccuracy)},{Optional(m.ValidationTop5Accuracy)},{Optional(best?.ValidationAccuracy)}," +
                $"{best?.Epoch.ToString(CultureInfo.InvariantCulture)},{m.LearningRate:R},{m.ImagesPerSecond:R},{m.Elapsed.TotalSeconds:R}");
        }
    }

    private static string Optional(double? value) => value?.ToString("R", CultureInfo.InvariantCulture) ?? "";

    private void RemoveEarlierRun(Action<string> log)
    {
        var earlier = CheckpointStore.Files(CheckpointsPath)
            .Concat(new[] { ModelFileName, MetricsFileName, CurvesFileName }.Select(name => System.IO.Path.Combine(Path, name)))
            .Where(File.Exists)
            .ToList();
        if (earlier.Count == 0)
        {
            return;
        }

        earlier.ForEach(File.Delete);
        log($"X-Net: run folder '{Path}' held an earlier run ({earlier.Count} files: checkpoints, model, metrics); they were removed so that " +
            "this run starts clean. To continue a run instead, resume it (ResumeFrom, xnet train --resume).");
    }

    /// <inheritdoc />
    public void Dispose() => runLock.Dispose();
}
