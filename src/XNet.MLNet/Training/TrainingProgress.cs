namespace XNet.MLNet.Training;

/// <summary>Progress after one optimiser step.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Total epochs.</param>
/// <param name="Batch">1-based batch within the epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Mean cross-entropy over the epoch so far.</param>
/// <param name="Accuracy">Top-1 accuracy over the epoch so far.</param>
/// <param name="LearningRate">Learning rate of this step.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch so far.</param>
public sealed record BatchProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double Accuracy,
    double LearningRate, double ImagesPerSecond);

/// <summary>Metrics at the end of one epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Total epochs.</param>
/// <param name="TrainLoss">Mean training cross-entropy.</param>
/// <param name="TrainAccuracy">Training top-1 accuracy.</param>
/// <param name="TrainTop5Accuracy">Training top-5 accuracy (top-k with k = min(5, classes)).</param>
/// <param name="ValidationLoss">Validation cross-entropy, when there is a validation set.</param>
/// <param name="ValidationAccuracy">Validation top-1 accuracy, when there is a validation set.</param>
/// <param name="ValidationTop5Accuracy">Validation top-5 accuracy (k = min(5, classes)), when there is a validation set.</param>
/// <param name="LearningRate">Learning rate of the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput of the epoch (validation excluded).</param>
/// <param name="Elapsed">Time since training started.</param>
public sealed record EpochMetrics(int Epoch, int Epochs, double TrainLoss, double TrainAccuracy, double TrainTop5Accuracy,
    double? ValidationLoss, double? ValidationAccuracy, double? ValidationTop5Accuracy, double LearningRate,
    double ImagesPerSecond, TimeSpan Elapsed);

/// <summary>Loss and accuracy of a model on a set of images.</summary>
/// <param name="Loss">Mean cross-entropy.</param>
/// <param name="Accuracy">Top-1 accuracy.</param>
/// <param name="Top5Accuracy">Top-5 accuracy: the label is among the 5 largest logits (top-k with k = min(5, classes)).</param>
/// <param name="Count">Images evaluated.</param>
public sealed record EvaluationResult(double Loss, double Accuracy, double Top5Accuracy, int Count);

/// <summary>
/// The metrics of every epoch of a run, with the best validation top-1 accuracy and its epoch kept apart from the final
/// epoch's metrics: selecting an epoch on the data that is then reported (the paper's reference code selected on its test set) is optimistic.
/// </summary>
public sealed class TrainingHistory : IReadOnlyList<EpochMetrics>
{
    private readonly IReadOnlyList<EpochMetrics> epochs;

    /// <summary>Wraps the per-epoch metrics.</summary>
    /// <param name="epochs">Metrics of each epoch, in order.</param>
    /// <param name="keptEpoch">1-based epoch whose weights the model holds after training (null: the last).</param>
    public TrainingHistory(IReadOnlyList<EpochMetrics> epochs, int? keptEpoch = null)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        this.epochs = epochs;
        BestValidation = EarlyStopping.Best(epochs, EarlyStoppingMetric.Accuracy);
        KeptEpoch = keptEpoch ?? (epochs.Count > 0 ? epochs[^1].Epoch : 0);
    }

    /// <summary>Metrics of the last epoch.</summary>
    /// <exception cref="InvalidOperationException">When no epoch ran.</exception>
    public EpochMetrics Final => epochs.Count > 0 ? epochs[^1] : throw new InvalidOperationException("No epoch has run.");

    /// <summary>The epoch with the highest validation top-1 accuracy (the first of equals); null without a validation set.</summary>
    public EpochMetrics? BestValidation { get; }

    /// <summary>Highest validation top-1 accuracy over the epochs; null without a validation set.</summary>
    public double? BestValidationAccuracy => BestValidation?.ValidationAccuracy;

    /// <summary>1-based epoch of <see cref="BestValidationAccuracy"/>; null without a validation set.</summary>
    public int? BestValidationEpoch => BestValidation?.Epoch;

    /// <summary>1-based epoch whose weights the model holds: the last, unless the best-validation model was kept.</summary>
    public int KeptEpoch { get; }

    /// <summary>Whether early stopping ended the run before its last epoch.</summary>
    public bool StoppedEarly => epochs.Count > 0 && epochs[^1].Epoch < epochs[^1].Epochs;

    /// <inheritdoc />
    public int Count => epochs.Count;

    /// <inheritdoc />
    public EpochMetrics this[int index] => epochs[index];

    /// <inheritdoc />
    public IEnumerator<EpochMetrics> GetEnumerator() => epochs.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
