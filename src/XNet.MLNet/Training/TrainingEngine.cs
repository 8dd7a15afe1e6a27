using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>
/// Trains an image classifier with SGD (momentum, Nesterov, weight decay), a learning-rate schedule and tensor-level
/// augmentation; reports progress per batch and metrics per epoch. Shared by the ML.NET trainer, the CLI and the
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

    /// <summary>Trains for <see cref="TrainingOptions.Epochs"/> epochs and returns the metrics of each.</summary>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellation"/> fires (checked every batch).</exception>
    public IReadOnlyList<EpochMetrics> Fit(ImageSet train, ImageSet? validation = null, CancellationToken cancellation = default)
    {
        if (train.Count == 0)
        {
            throw new ArgumentException("The training set is empty.", nameof(train));
        }

        var parameters = model.parameters().Where(p => p.requires_grad).ToArray();
        using var optimizer = optim.SGD(parameters, options.LearningRate, options.Momentum, dampening: 0,
            weight_decay: options.WeightDecay, nesterov: options.Nesterov);
        var history = new List<EpochMetrics>();
        var clock = Stopwatch.StartNew();
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            var (loss, accuracy, rate, imagesPerSecond) = TrainEpoch(optimizer, train, epoch, cancellation);
            var validated = validation is null ? null : Evaluate(model, validation, options.EvaluationBatchSize, device, cancellation);
            var metrics = new EpochMetrics(epoch + 1, options.Epochs, loss, accuracy, validated?.Loss, validated?.Accuracy,
                rate, imagesPerSecond, clock.Elapsed);
            history.Add(metrics);
            EpochCompleted?.Invoke(metrics);
        }

        model.eval();
        return history;
    }

    /// <summary>Mean cross-entropy and top-1 accuracy of <paramref name="model"/> on <paramref name="images"/>, in evaluation mode.</summary>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, ImageSet images, int batchSize, Device device,
        CancellationToken cancellation = default)
    {
        model.eval();
        double lossSum = 0;
        long correct = 0;
        using var loader = new BatchLoader(images, batchSize, shuffleSeed: null, cropPadding: 0, flip: false, cancellation);
        using (no_grad())
        {
            foreach (var batch in loader.Batches())
            {
                using var scope = NewDisposeScope();
                var (x, y) = ToDevice(batch, images, device);
                var logits = model.forward(x);
                lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(y).sum().item<long>();
            }
        }

        return new EvaluationResult(lossSum / images.Count, (double)correct / images.Count, images.Count);
    }

    private (double Loss, double Accuracy, double Rate, double ImagesPerSecond) TrainEpoch(
        OptimizerHelper optimizer, ImageSet train, int epoch, CancellationToken cancellation)
    {
        model.train();
        using var loader = new BatchLoader(train, options.BatchSize, options.Seed * 1_000_003 + epoch,
            options.RandomCropPadding, options.HorizontalFlip, cancellation);
        double lossSum = 0, rate = options.LearningRate;
        long correct = 0, seen = 0;
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
                if (options.RandomCropPadding > 0 || options.HorizontalFlip)
                {
                    x = Augmentation.CropAndFlip(x, options.RandomCropPadding, tensor(batch.CropRows, device: device),
                        tensor(batch.CropColumns, device: device), tensor(batch.Flips, device: device));
                }

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
                correct += logits.argmax(1).eq(y).sum().item<long>();
            }

            seen += batch.Count;
            step++;
            BatchCompleted?.Invoke(new BatchProgress(epoch + 1, options.Epochs, step, loader.BatchCount, lossSum / seen,
                (double)correct / seen, rate, seen / clock.Elapsed.TotalSeconds));
        }

        return (lossSum / seen, (double)correct / seen, rate, seen / clock.Elapsed.TotalSeconds);
    }

    private static (Tensor Images, Tensor Labels) ToDevice(HostBatch batch, ImageSet set, Device device)
    {
        var shape = set.Shape;
        var images = tensor(batch.Pixels, new long[] { batch.Count, shape.Channels, shape.Height, shape.Width }).to(device);
        var labels = tensor(batch.Labels).to(device);
        return (images, labels);
    }
}
