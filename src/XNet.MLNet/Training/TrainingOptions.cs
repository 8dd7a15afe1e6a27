namespace XNet.MLNet.Training;

/// <summary>The optimiser of a training run (the paper's reference code's <c>--optimType</c>).</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with <see cref="TrainingOptions.Momentum"/>, optional Nesterov momentum and L2 weight decay.</summary>
    Sgd,

    /// <summary>Adam (betas 0.9 and 0.999, eps 1e-8) with L2 weight decay added to the gradient; momentum settings are ignored.</summary>
    Adam,
}

/// <summary>The augmentation of training images, drawn per image from the seeded batch loader.</summary>
public enum AugmentationKind
{
    /// <summary>
    /// Zero-pad by <see cref="TrainingOptions.RandomCropPadding"/>, crop back to the input size at a random offset, and flip
    /// horizontally when <see cref="TrainingOptions.HorizontalFlip"/> is set (the paper's reference code's CIFAR augmentation with padding 4).
    /// </summary>
    PadCropFlip,

    /// <summary>
    /// torchvision's RandomResizedCrop to the input size (area fraction <see cref="TrainingOptions.CropScale"/>, aspect ratio
    /// <see cref="TrainingOptions.CropRatio"/>, bilinear resize), then a horizontal flip when <see cref="TrainingOptions.HorizontalFlip"/>
    /// is set (the paper's reference code's ImageNet augmentation).
    /// </summary>
    RandomResizedCrop,

    /// <summary>No augmentation: the images as they are.</summary>
    None,
}

/// <summary>Optimiser, schedule and augmentation settings of one training run.</summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Images per optimiser step.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Base (maximum) learning rate.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>The optimiser: SGD (default) or Adam.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    /// <summary>SGD momentum (ignored by Adam).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Nesterov momentum (the paper's reference code's setting; ignored by Adam).</summary>
    public bool Nesterov { get; init; } = true;

    /// <summary>L2 weight decay; with compact expander weights it never touches absent connections.</summary>
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>Learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Cosine();

    /// <summary>How training images are augmented.</summary>
    public AugmentationKind Augmentation { get; init; } = AugmentationKind.PadCropFlip;

    /// <summary>Zero padding before the random crop back to the input size (<see cref="AugmentationKind.PadCropFlip"/>); 0 disables cropping.</summary>
    public int RandomCropPadding { get; init; } = 2;

    /// <summary>Whether to flip half of the images horizontally (with either crop; not with <see cref="AugmentationKind.None"/>).</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Range of the crop's area as a fraction of the image (<see cref="AugmentationKind.RandomResizedCrop"/>).</summary>
    public (double Min, double Max) CropScale { get; init; } = (0.08, 1.0);

    /// <summary>Range of the crop's aspect ratio, width over height (<see cref="AugmentationKind.RandomResizedCrop"/>).</summary>
    public (double Min, double Max) CropRatio { get; init; } = (3.0 / 4.0, 4.0 / 3.0);

    /// <summary>
    /// Restore, after the last epoch, the weights of the epoch with the best validation top-1 accuracy (needs a validation
    /// set). Off by default: the model of the final epoch is the result.
    /// </summary>
    public bool KeepBestValidationModel { get; init; }

    /// <summary>
    /// Stop when the validation metric stalls and restore the best epoch's weights (needs a validation set); null
    /// (default) trains all <see cref="Epochs"/>.
    /// </summary>
    public EarlyStopping? EarlyStopping { get; init; }

    /// <summary>Images per forward pass when evaluating.</summary>
    public int EvaluationBatchSize { get; init; } = 256;

    /// <summary>Seed of shuffling and augmentation.</summary>
    public int Seed { get; init; }

    /// <summary>Throws when a value is out of range, naming the option.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When an option is invalid.</exception>
    public void Validate()
    {
        Check(Epochs >= 1, nameof(Epochs), Epochs, "at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a positive number");
        Check(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, "Sgd or Adam");
        Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "in [0, 1)");
        Check(Optimizer != OptimizerKind.Sgd || !Nesterov || Momentum > 0, nameof(Nesterov), Nesterov, "false when Momentum is 0");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "a finite number, not negative");
        Check(Schedule is not null, nameof(Schedule), "null", "a LearningRateSchedule");
        Schedule!.Validate();
        Check(Enum.IsDefined(Augmentation), nameof(Augmentation), Augmentation, "PadCropFlip, RandomResizedCrop or None");
        Check(RandomCropPadding >= 0, nameof(RandomCropPadding), RandomCropPadding, "not negative");
        Check(CropScale.Min > 0 && CropScale.Min <= CropScale.Max && CropScale.Max <= 1, nameof(CropScale), CropScale,
            "a range (Min, Max) with 0 < Min <= Max <= 1");
        Check(CropRatio.Min > 0 && CropRatio.Min <= CropRatio.Max && double.IsFinite(CropRatio.Max), nameof(CropRatio), CropRatio,
            "a range (Min, Max) with 0 < Min <= Max");
        Check(EvaluationBatchSize >= 1, nameof(EvaluationBatchSize), EvaluationBatchSize, "at least 1");
        EarlyStopping?.Validate();
    }

    /// <summary>Whether the best validation epoch's weights are restored at the end (kept, or early stopping).</summary>
    internal bool RestoresBestEpoch => KeepBestValidationModel || EarlyStopping is not null;

    /// <summary>The metric that picks the best epoch: early stopping's, else validation accuracy.</summary>
    internal EarlyStoppingMetric SelectionMetric => EarlyStopping?.Metric ?? EarlyStoppingMetric.Accuracy;

    private static void Check(bool ok, string option, object value, string expected)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(option, value, $"Training option {option} = {value} must be {expected}.");
        }
    }
}
