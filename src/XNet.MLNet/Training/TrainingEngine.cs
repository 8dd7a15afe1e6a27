using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>
/// Trains an image classifier with SGD (momentum, Nesterov, weight decay) or Adam, a learning-rate schedule and
/// tensor-level augmentation; reports progress per batch and top-1/top-5 metrics per epoch. Shared by the ML.NET trainer, the CLI and the
/// benchmarks; it knows nothing of IDataView.
/// </summary>
public sealed class TrainingEngine
{
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly XNetTrainer.Options options;
    private readonly int seed;
    private readonly Device device;
    private float[]? erasedValue; // RandomErasing's per-channel value, read once from the network's Normalize

    /// <summary>Creates the engine; the model is moved to <paramref name="device"/>.</summary>
    /// <param name="model">A classifier from raw (B, C, H, W) pixels to (B, classes) logits.</param>
    /// <param name="options">Training settings (validated and copied here; a null <see cref="XNetTrainer.Options.Seed"/> is 0).
    /// The engine reads the optimiser, schedule, augmentation, validation and checkpoint settings; columns and data are the trainer's.</param>
    /// <param name="device">Where to train.</param>
    public TrainingEngine(nn.Module<Tensor, Tensor> model, XNetTrainer.Options options, Device device)
    {
        options.Validate();
        this.model = model;
        seed = options.Seed ?? 0;
        this.options = options.WithSeed(seed);
        this.device = device;
        model.to(device);
    }

    /// <summary>Raised after every optimiser step.</summary>
    public event Action<BatchProgress>? BatchCompleted;

    /// <summary>Raised at the end of every epoch (after validation).</summary>
    public event Action<EpochMetrics>? EpochCompleted;

    /// <summary>
    /// Trains for <see cref="XNetTrainer.Options.Epoch"/> epochs (fewer when <see cref="XNetTrainer.Options.EarlyStoppingCriteria"/> stops
    /// it) and returns the metrics of each. The model keeps the weights of the final epoch, or of the best validation epoch
    /// when <see cref="XNetTrainer.Options.KeepBestValidationModel"/> or early stopping is set.
    /// </summary>
    /// <exception cref="ArgumentException">When the training set is empty, or KeepBestValidationModel or EarlyStopping is set without a validation set.</exception>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellation"/> fires (checked every batch).</exception>
    public TrainingHistory Fit(ImageSet train, ImageSet? validation = null, CancellationToken cancellation = default) =>
        Fit(train, validation, store: null, resumeFrom: null, cancellation);

    /// <summary>
    /// Trains as <see cref="Fit(ImageSet, ImageSet?, CancellationToken)"/>, writing checkpoints (at every epoch end, every
    /// <see cref="XNetTrainer.Options.CheckpointEveryBatches"/> batches and on cancellation) and optionally continuing a checkpointed
    /// run: on the CPU with the same options the result is bit-identical to an uninterrupted run.
    /// </summary>
    /// <param name="train">Training images.</param>
    /// <param name="validation">Validation images, or null.</param>
    /// <param name="store">Where to write checkpoints, or null for none.</param>
    /// <param name="resumeFrom">A checkpoint of this run to continue from, or null to start.</param>
    /// <param name="cancellation">Checked at every batch boundary; a checkpoint is written before the exception.</param>
    /// <exception cref="ArgumentException">When the data or the checkpoint does not fit this run.</exception>
    /// <exception cref="OperationCanceledException">When cancelled; its message names the checkpoint to resume from.</exception>
    /// <exception cref="InvalidOperationException">When the loss becomes NaN or infinite; the last checkpoint is left in place.</exception>
    internal TrainingHistory Fit(ImageSet train, ImageSet? validation, CheckpointStore? store, TrainingCheckpoint? resumeFrom,
        CancellationToken cancellation = default)
    {
        if (train.Count == 0)
        {
            throw new ArgumentException("The training set is empty.", nameof(train));
        }

        if (options.RestoresBestEpoch && validation is null)
        {
            var (option, unset) = options.EarlyStoppingCriteria is null ? ("KeepBestValidationModel = true", "set it to false")
                : ("EarlyStoppingCriteria", "set EarlyStoppingCriteria to null");
            throw new ArgumentException($"Option {option} needs a validation set; pass one or {unset}.", nameof(validation));
        }

        var parameters = model.parameters().Where(p => p.requires_grad).ToArray();
        using var optimizer = CreateOptimizer(parameters);
        var run = resumeFrom is null ? new RunState { TrainingImages = train.Count } : Restore(resumeFrom, optimizer, train.Count);
        var clock = Stopwatch.StartNew();
        double elapsedBefore = run.Progress.ElapsedSeconds;
        double Elapsed() => elapsedBefore + clock.Elapsed.TotalSeconds;
        for (; run.Epoch < options.Epoch; run.Epoch++)
        {
            if (options.EarlyStoppingCriteria?.ShouldStop(run.History) == true)
            {
                break;
            }

            var trained = TrainEpoch(optimizer, train, run, store, Elapsed, cancellation);
            var validated = validation is null ? null : Validate(optimizer, validation, run, store, cancellation);
            var metrics = new EpochMetrics(run.Epoch + 1, options.Epoch, trained.Loss, trained.Accuracy, trained.Top5Accuracy,
                validated?.Loss, validated?.Accuracy, validated?.Top5Accuracy, trained.Rate, trained.ImagesPerSecond,
                TimeSpan.FromSeconds(Elapsed()));
            run.History.Add(metrics);
            bool improved = validated is not null && EarlyStopping.Best(run.History, options.SelectionMetric)?.Epoch == metrics.Epoch;
            if (improved && options.RestoresBestEpoch)
            {
                run.BestEpoch = metrics.Epoch;
                run.BestModel = ModelBytes();
            }

            run.Batch = 0;
            run.Progress = EpochProgress.Start(Elapsed());
            if (store is not null)
            {
                Checkpoint(store, optimizer, run, run.Epoch + 1, 0, best: improved);
            }

            EpochCompleted?.Invoke(metrics);
        }

        if (run.BestModel is not null)
        {
            LoadModel(run.BestModel);
        }

        model.eval();
        return new TrainingHistory(run.History, run.BestEpoch);
    }

    /// <summary>
    /// Scores the epoch just trained on the validation set. A cancellation here keeps the epoch's training: the checkpoint
    /// is written at the epoch's last batch, and a resumed run repeats only the validation.
    /// </summary>
    private EvaluationResult Validate(OptimizerHelper optimizer, ImageSet validation, RunState run, CheckpointStore? store,
        CancellationToken cancellation)
    {
        try
        {
            return Evaluate(model, validation, options.InferenceBatchSize, device, cancellation);
        }
        catch (OperationCanceledException ex) when (cancellation.IsCancellationRequested)
        {
            throw Cancelled(optimizer, run, store, $"the validation of epoch {run.Epoch + 1} (its training is done)", ex, cancellation);
        }
    }

    /// <summary>
    /// The exception a cancellation ends the run with, after writing the checkpoint of the current position (between
    /// batches, or between an epoch's last batch and its validation, the position is consistent: the run can continue
    /// exactly there).
    /// </summary>
    private OperationCanceledException Cancelled(OptimizerHelper optimizer, RunState run, CheckpointStore? store, string where,
        OperationCanceledException ex, CancellationToken cancellation)
    {
        if (store is null)
        {
            return new OperationCanceledException($"Training was cancelled at {where}.", ex, cancellation);
        }

        string path = Checkpoint(store, optimizer, run, run.Epoch, run.Batch, best: false);
        return new OperationCanceledException(
            $"Training was cancelled at {where}; checkpoint '{path}' was written. Resume from '{store.Directory}'.", ex, cancellation);
    }

    /// <summary>
    /// Mean cross-entropy, top-1 and top-5 accuracy of <paramref name="model"/> on <paramref name="images"/>, in evaluation mode.
    /// </summary>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, ImageSet images, int batchSize, Device device,
        CancellationToken cancellation = default)
    {
        model.eval();
        double lossSum = 0;
        long correct = 0, correctTop5 = 0;
        using var loader = new BatchLoader(images, batchSize, shuffleSeed: null, AugmentationPlan.Identity, cancellation);
        using (no_grad())
        {
            foreach (var batch in loader.Batches())
            {
                using var scope = NewDisposeScope();
                var (x, y) = ToDevice(batch, images, device);
                var logits = model.forward(x);
                lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                correct += TopKCorrect(logits, y, 1);
                correctTop5 += TopKCorrect(logits, y, 5);
            }
        }

        return new EvaluationResult(lossSum / images.Count, (double)correct / images.Count, (double)correctTop5 / images.Count,
            images.Count);
    }

    /// <summary>
    /// How many rows of <paramref name="logits"/> (B, classes) have their label among the k largest logits, with k capped
    /// at the class count (the paper's reference code's <c>precision</c>, as a count).
    /// </summary>
    internal static long TopKCorrect(Tensor logits, Tensor labels, int k)
    {
        int top = (int)Math.Min(k, logits.shape[1]);
        using var scope = NewDisposeScope();
        var (_, indices) = logits.topk(top, dim: 1);
        return indices.eq(labels.unsqueeze(1)).any(1).sum().item<long>();
    }

    private OptimizerHelper CreateOptimizer(IEnumerable<Parameter> parameters) => options.Optimizer switch
    {
        OptimizerKind.Adam => new KeptScalarOptimizers.Adam(parameters, options.LearningRate, options.WeightDecay),
        _ => new KeptScalarOptimizers.SGD(parameters, options.LearningRate, options.Momentum, dampening: 0, options.WeightDecay, options.Nesterov),
    };

    private (double Loss, double Accuracy, double Top5Accuracy, double Rate, double ImagesPerSecond) TrainEpoch(
        OptimizerHelper optimizer, ImageSet train, RunState run, CheckpointStore? store, Func<double> elapsed,
        CancellationToken cancellation)
    {
        model.train();
        int epoch = run.Epoch;
        var plan = AugmentationPlan.From(options);
        using var loader = new BatchLoader(train, options.BatchSize, seed * 1_000_003 + epoch, plan, cancellation, run.Batch);
        var (lossSum, correct, correctTop5, seen, _) = run.Progress;
        long seenBefore = seen;
        var clock = Stopwatch.StartNew();
        try
        {
            foreach (var batch in loader.Batches())
            {
                cancellation.ThrowIfCancellationRequested();
                double rate = options.LearningRateSchedule.At(options.LearningRate, epoch, run.Batch, loader.BatchCount, options.Epoch);
                foreach (var group in optimizer.ParamGroups)
                {
                    group.LearningRate = rate;
                }

                using (var scope = NewDisposeScope())
                {
                    var (x, y) = ToDevice(batch, train, device);
                    x = Augment(x, batch, plan);

                    var logits = model.forward(x);
                    var loss = nn.functional.cross_entropy(logits, y, label_smoothing: options.LabelSmoothing);
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();

                    float batchLoss = loss.item<float>();
                    if (!float.IsFinite(batchLoss))
                    {
                        throw new InvalidOperationException(
                            $"Training diverged: the loss is {batchLoss} at epoch {epoch + 1}, batch {run.Batch + 1} (learning rate {rate:g4}). " +
                            "Lower LearningRate or check the input pixels." +
                            (store?.Latest is string latest ? $" The last good checkpoint, '{latest}', is kept." : ""));
                    }

                    lossSum += batchLoss * batch.Count;
                    correct += TopKCorrect(logits, y, 1);
                    correctTop5 += TopKCorrect(logits, y, 5);
                }

                seen += batch.Count;
                run.Batch++;
                run.Progress = new EpochProgress(lossSum, correct, correctTop5, seen, elapsed());
                BatchCompleted?.Invoke(new BatchProgress(epoch + 1, options.Epoch, run.Batch, loader.BatchCount, lossSum / seen,
                    (double)correct / seen, rate, (seen - seenBefore) / clock.Elapsed.TotalSeconds));
                int every = options.CheckpointEveryBatches;
                if (store is not null && every > 0 && run.Batch % every == 0 && run.Batch < loader.BatchCount)
                {
                    Checkpoint(store, optimizer, run, epoch, run.Batch, best: false);
                }
            }
        }
        catch (OperationCanceledException ex) when (cancellation.IsCancellationRequested)
        {
            throw Cancelled(optimizer, run, store, $"epoch {epoch + 1}, after batch {run.Batch}", ex, cancellation);
        }
        catch (ExternalException ex)
        {
            // libtorch's message is its failed check followed by a native stack dump: keep the check and where it was raised.
            throw new InvalidOperationException(
                $"libtorch failed at epoch {epoch + 1}, batch {run.Batch + 1}: {NativeFailure(ex.Message)}." +
                (store?.Latest is string latest ? $" The last checkpoint, '{latest}', is kept; resume from '{store.Directory}'." : ""), ex);
        }

        // Both from the run's state rather than this call's, so they are the epoch's even when the run was resumed within it
        // (or after its last batch, when this call trains nothing): the last step's rate and the epoch's training time,
        // measured from the previous epoch's end.
        double lastRate = options.LearningRateSchedule.At(options.LearningRate, epoch, loader.BatchCount - 1, loader.BatchCount, options.Epoch);
        double epochStart = run.History.Count > 0 ? run.History[^1].Elapsed.TotalSeconds : 0;
        return (lossSum / seen, (double)correct / seen, (double)correctTop5 / seen, lastRate,
            seen / (run.Progress.ElapsedSeconds - epochStart));
    }

    /// <summary>The first line of a libtorch error and the function that raised it, without the native frames.</summary>
    internal static string NativeFailure(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string check = lines.Length > 0 ? lines[0].TrimEnd('.') : "an unknown native error";
        const string raised = "Exception raised from ";
        string? origin = lines.FirstOrDefault(l => l.StartsWith(raised, StringComparison.Ordinal))?[raised.Length..].Split(' ')[0];
        return origin is null ? check : $"{check} (raised in {origin})";
    }

    /// <summary>Loads a checkpoint's weights, optimizer state, random state and position.</summary>
    private RunState Restore(TrainingCheckpoint checkpoint, OptimizerHelper optimizer, int trainingImages)
    {
        // The position (epoch, batch, the epoch's sums) means something only for the data the run was started on.
        if (checkpoint.TrainingImages is int images && images != trainingImages)
        {
            throw new ArgumentException(
                $"Checkpoint '{checkpoint.Path}' was written by a run training on {images:N0} images; this run has {trainingImages:N0}. " +
                "Resume with the training data (and validation split) the run was started with, or start a new run.",
                nameof(XNetTrainer.Options.ResumeFrom));
        }

        if (checkpoint.Seed != seed)
        {
            throw new ArgumentException(
                $"Checkpoint '{checkpoint.Path}' was written by a run with seed {checkpoint.Seed}; this run has seed {seed}. " +
                "Resume with the checkpoint's seed.", nameof(checkpoint));
        }

        if (checkpoint.Epoch > options.Epoch)
        {
            throw new ArgumentException(
                $"Checkpoint '{checkpoint.Path}' is at epoch {checkpoint.Epoch}, beyond this run's {options.Epoch} epochs.", nameof(checkpoint));
        }

        byte[]? bestModel;
        try
        {
            // The network's tensors and their names bound what its weights (and the optimiser's per-weight state) can take.
            long weights = model.state_dict().Values.Sum(t => t.numel()) * sizeof(long) + (1 << 20);
            LoadModel(checkpoint.Blob(CheckpointStore.ModelEntry, weights));
            using (var reader = new BinaryReader(new MemoryStream(checkpoint.Blob(CheckpointStore.OptimizerEntry, 3 * weights))))
            {
                optimizer.load_state_dict(reader);
            }

            bestModel = checkpoint.Holds(CheckpointStore.BestModelEntry) ? checkpoint.Blob(CheckpointStore.BestModelEntry, weights) : null;

            // libtorch aborts the process on a random state of another size, so the size is checked here first.
            using var current = random.get_rng_state();
            var rng = checkpoint.Blob(CheckpointStore.RandomEntry, current.numel());
            if (rng.Length != current.numel())
            {
                throw new InvalidDataException($"its random state has {rng.Length} bytes; the generator's has {current.numel()}");
            }

            using var state = tensor(rng);
            random.set_rng_state(state);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidDataException or ArgumentException or EndOfStreamException
                                       or InvalidOperationException or IOException)
        {
            throw new InvalidDataException($"Checkpoint '{checkpoint.Path}' cannot be restored: {ex.Message}", ex);
        }

        return new RunState
        {
            TrainingImages = trainingImages,
            Epoch = checkpoint.Epoch,
            Batch = checkpoint.Batch,
            Progress = checkpoint.Progress,
            History = checkpoint.History.ToList(),
            BestEpoch = checkpoint.BestEpoch,
            BestModel = bestModel,
        };
    }

    /// <summary>Writes the checkpoint of position (<paramref name="epoch"/>, <paramref name="batch"/>) and returns its path.</summary>
    private string Checkpoint(CheckpointStore store, OptimizerHelper optimizer, RunState run, int epoch, int batch, bool best) =>
        store.Save(epoch, batch, options, run.TrainingImages, run.Progress, run.History, run.BestEpoch, Blobs(optimizer, run), best);

    /// <summary>The binary parts of a checkpoint: weights (with graphs and BN statistics), optimizer state, random state.</summary>
    private Dictionary<string, byte[]> Blobs(OptimizerHelper optimizer, RunState run)
    {
        var blobs = new Dictionary<string, byte[]> { [CheckpointStore.ModelEntry] = ModelBytes() };
        using (var buffer = new MemoryStream())
        {
            using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                optimizer.save_state_dict(writer);
            }

            blobs[CheckpointStore.OptimizerEntry] = buffer.ToArray();
        }

        using (var state = random.get_rng_state())
        {
            blobs[CheckpointStore.RandomEntry] = state.data<byte>().ToArray();
        }

        if (run.BestModel is not null)
        {
            blobs[CheckpointStore.BestModelEntry] = run.BestModel;
        }

        return blobs;
    }

    private byte[] ModelBytes()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            model.save(writer);
        }

        return buffer.ToArray();
    }

    private void LoadModel(byte[] bytes)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes));
        model.load(reader);
    }

    private Tensor Augment(Tensor images, HostBatch batch, AugmentationPlan plan)
    {
        var x = !plan.Crops ? images : plan.Kind switch
        {
            AugmentationKind.RandomResizedCrop => Augmentation.ResizedCropAndFlip(images, batch.CropRows, batch.CropColumns,
                batch.CropHeights, batch.CropWidths, batch.Flips),
            _ => Augmentation.CropAndFlip(images, plan.Padding, batch.CropRows, batch.CropColumns, batch.Flips),
        };
        return plan.Erasing > 0
            ? Augmentation.Erase(x, batch.EraseTops, batch.EraseLefts, batch.EraseHeights, batch.EraseWidths, ErasedValue(images))
            : x;
    }

    /// <summary>
    /// What erased pixels become: the channel mean of the network's own <see cref="Normalize"/> (0 after it, as torchvision
    /// erases normalised tensors with <c>value=0</c>), or 0 for a network without one.
    /// </summary>
    private Tensor ErasedValue(Tensor images) =>
        tensor(erasedValue ??= model.modules().OfType<Normalize>().FirstOrDefault()?.Mean ?? new float[images.shape[1]]);

    /// <summary>
    /// The batch as tensors on <paramref name="device"/>, copied out of the loader's buffers (which it refills). For CUDA
    /// the host tensors are pinned and copied asynchronously, so the copy overlaps the previous batch's kernels (the loader
    /// thread has already prepared this batch).
    /// </summary>
    private static (Tensor Images, Tensor Labels) ToDevice(HostBatch batch, ImageSet set, Device device)
    {
        var shape = set.Shape;
        using var pixels = frombuffer(batch.Pixels, ScalarType.Float32, count: (long)batch.Count * shape.Size);
        using var labels = frombuffer(batch.Labels, ScalarType.Int64, count: batch.Count);
        var images = pixels.view(batch.Count, shape.Channels, shape.Height, shape.Width);
        if (device.type == DeviceType.CPU)
        {
            return (images.clone(), labels.clone());
        }

        return (images.pin_memory().to(device, non_blocking: true), labels.pin_memory().to(device, non_blocking: true));
    }

    /// <summary>Where a run stands: its training set's size, the position, the running sums of the current epoch, the history and the best epoch.</summary>
    private sealed class RunState
    {
        public int TrainingImages { get; init; }

        public int Epoch { get; set; }

        public int Batch { get; set; }

        public EpochProgress Progress { get; set; } = EpochProgress.Start(0);

        public List<EpochMetrics> History { get; init; } = new();

        public int? BestEpoch { get; set; }

        public byte[]? BestModel { get; set; }
    }
}
