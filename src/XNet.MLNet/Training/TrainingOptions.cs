namespace XNet.MLNet.Training;

/// <summary>Optimiser, schedule and augmentation settings of one training run.</summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Images per optimiser step.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Base (maximum) learning rate.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Nesterov momentum (the seed's setting).</summary>
    public bool Nesterov { get; init; } = true;

    /// <summary>L2 weight decay; with compact expander weights it never touches absent connections.</summary>
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>Learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Cosine();

    /// <summary>Zero padding before the random crop back to the input size; 0 disables cropping.</summary>
    public int RandomCropPadding { get; init; } = 2;

    /// <summary>Whether to flip half of the images horizontally.</summary>
    public bool HorizontalFlip { get; init; } = true;

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
        Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "in [0, 1)");
        Check(!Nesterov || Momentum > 0, nameof(Nesterov), Nesterov, "false when Momentum is 0");
        Check(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "not negative");
        Check(RandomCropPadding >= 0, nameof(RandomCropPadding), RandomCropPadding, "not negative");
        Check(EvaluationBatchSize >= 1, nameof(EvaluationBatchSize), EvaluationBatchSize, "at least 1");
    }

    private static void Check(bool ok, string option, object value, string expected)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(option, value, $"Training option {option} = {value} must be {expected}.");
        }
    }
}
