using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
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
    private readonly TrainingOptions options;
    private readonly Device device;

    /// <summary>Creates the engine; the model is moved to <paramref name="device"/>.</summary>
    /// <param name="model">A classifier from raw (B, C, H, W) pixels to (B, classes) logits.</param>
    /// <param name="options">Training settings (validated here).</param>
    /// <param name="device">Where to train.</param>
    public TrainingEngine(nn.Module<Tensor, Tensor> model, TrainingOptions options, Device device)
    {
        options.Validate();
        this.model = model;
        this.options = options;
        this.device = device;
        model.to(device);
    }

    /// <summary>Raised after every optimiser step.</summary>
    public event Action<BatchProgress>? BatchCompleted;

    /// <summary>Raised at the end of every epoch (after validation).</summary>
    public event Action<EpochMetrics>? EpochCompleted;

    /// <summary>
    /// Trains for <see cref="TrainingOptions.Epochs"/> epochs and returns the metrics of each. The model keeps the weights
    /// of the final epoch, or of the best validation epoch when <see cref="TrainingOptions.KeepBestValidationModel"/> is set.
    /// </summary>
    /// <exception cref="ArgumentException">When the training set is empty, or KeepBestValidationModel is set without a validation set.</exception>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellation"/> fires (checked every batch).</exception>
    public TrainingHistory Fit(ImageSet train, ImageSet? validation = null, CancellationToken cancellation = default)
    {
        if (train.Count == 0)
        {
            throw new ArgumentException("The training set is empty.", nameof(train));
        }

        if (options.KeepBestValidationModel && validation is null)
        {
            throw new ArgumentException(
                "Training option KeepBestValidationModel = true needs a validation set; pass one or set it to false.", nameof(validation));
        }

        var parameters = model.parameters().Where(p => p.requires_grad).ToArray();
        using var optimizer = CreateOptimizer(parameters);
        var history = new List<EpochMetrics>();
        Dictionary<string, Tensor>? best = null;
        int? bestEpoch = null;
        double bestAccuracy = double.NegativeInfinity;
        var clock = Stopwatch.StartNew();
        try
        {
            for (int epoch = 0; epoch < options.Epochs; epoch++)
            {
                var trained = TrainEpoch(optimizer, train, epoch, cancellation);
                var validated = validation is null ? null : Evaluate(model, validation, options.EvaluationBatchSize, device, cancellation);
                var metrics = new EpochMetrics(epoch + 1, options.Epochs, trained.Loss, trained.Accuracy, trained.Top5Accuracy,
                    validated?.Loss, validated?.Accuracy, validated?.Top5Accuracy, trained.Rate, trained.ImagesPerSecond, clock.Elapsed);
                history.Add(metrics);
                if (options.KeepBestValidationModel && validated!.Accuracy > bestAccuracy)
                {
                    bestAccuracy = validated.Accuracy;
                    bestEpoch = epoch + 1;
                    DisposeAll(best);
                    best = Snapshot();
                }

                EpochCompleted?.Invoke(metrics);
            }

            if (best is not null)
            {
                using (no_grad())
                {
                    model.load_state_dict(best);
                }
            }
        }
        finally
        {
            DisposeAll(best);
        }

        model.eval();
        return new TrainingHistory(history, bestEpoch);
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
    /// at the class count (the seed's <c>precision</c>, as a count).
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
        OptimizerKind.Adam => optim.Adam(parameters, options.LearningRate, weight_decay: options.WeightDecay),
        _ => optim.SGD(parameters, options.LearningRate, options.Momentum, dampening: 0, weight_decay: options.WeightDecay,
            nesterov: options.Nesterov),
    };

    private Dictionary<string, Tensor> Snapshot()
    {
        using var _ = no_grad();
        return model.state_dict().ToDictionary(e => e.Key, e => e.Value.clone().DetachFromDisposeScope());
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        foreach (var t in tensors?.Values ?? Enumerable.Empty<Tensor>())
        {
            t.Dispose();
        }

        tensors?.Clear();
    }

    private (double Loss, double Accuracy, double Top5Accuracy, double Rate, double ImagesPerSecond) TrainEpoch(
        OptimizerHelper optimizer, ImageSet train, int epoch, CancellationToken cancellation)
    {
        model.train();
        var plan = AugmentationPlan.From(options);
        using var loader = new BatchLoader(train, options.BatchSize, options.Seed * 1_000_003 + epoch, plan, cancellation);
        double lossSum = 0, rate = options.LearningRate;
        long correct = 0, correctTop5 = 0, seen = 0;
        int step = 0;
        var clock = Stopwatch.StartNew();
        foreach (var batch in loader.Batches())
        {
            cancellation.ThrowIfCancellationRequested();
            rate = options.Schedule.At(options.LearningRate, epoch, step, loader.BatchCount, options.Epochs);
            foreach (var group in optimizer.ParamGroups)
            {
                group.LearningRate = rate;
            }

            using (var scope = NewDisposeScope())
            {
                var (x, y) = ToDevice(batch, train, device);
                x = Augment(x, batch, plan);

                var logits = model.forward(x);
                var loss = nn.functional.cross_entropy(logits, y);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();

                float batchLoss = loss.item<float>();
                if (!float.IsFinite(batchLoss))
                {
                    throw new InvalidOperationException(
                        $"Training diverged: the loss is {batchLoss} at epoch {epoch + 1}, batch {step + 1} (learning rate {rate:g4}). " +
                        "Lower LearningRate or check the input pixels.");
                }

                lossSum += batchLoss * batch.Count;
                correct += TopKCorrect(logits, y, 1);
                correctTop5 += TopKCorrect(logits, y, 5);
            }

            seen += batch.Count;
            step++;
            BatchCompleted?.Invoke(new BatchProgress(epoch + 1, options.Epochs, step, loader.BatchCount, lossSum / seen,
                (double)correct / seen, rate, seen / clock.Elapsed.TotalSeconds));
        }

        return (lossSum / seen, (double)correct / seen, (double)correctTop5 / seen, rate, seen / clock.Elapsed.TotalSeconds);
    }

    private Tensor Augment(Tensor images, HostBatch batch, AugmentationPlan plan) => !plan.Active ? images : plan.Kind switch
    {
        AugmentationKind.RandomResizedCrop => Augmentation.ResizedCropAndFlip(images, tensor(batch.CropRows, device: device),
            tensor(batch.CropColumns, device: device), tensor(batch.CropHeights, device: device),
            tensor(batch.CropWidths, device: device), tensor(batch.Flips, device: device)),
        _ => Augmentation.CropAndFlip(images, plan.Padding, tensor(batch.CropRows, device: device),
            tensor(batch.CropColumns, device: device), tensor(batch.Flips, device: device)),
    };

    private static (Tensor Images, Tensor Labels) ToDevice(HostBatch batch, ImageSet set, Device device)
    {
        var shape = set.Shape;
        var images = tensor(batch.Pixels, new long[] { batch.Count, shape.Channels, shape.Height, shape.Width }).to(device);
        var labels = tensor(batch.Labels).to(device);
        return (images, labels);
    }
}
