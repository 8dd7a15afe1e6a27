namespace XNet.MLNet.Training;

/// <summary>Which images a metric was measured on.</summary>
public enum MetricsDataset
{
    /// <summary>The training images (running averages over the epoch, augmented, in training mode).</summary>
    Train,

    /// <summary>The validation images (evaluation mode, no augmentation).</summary>
    Validation,
}

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
/// <param name="ValidationLoss">Validation cross-entropy, when there is a validation set.</param>
/// <param name="ValidationAccuracy">Validation top-1 accuracy, when there is a validation set.</param>
/// <param name="LearningRate">Learning rate of the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput of the epoch (validation excluded).</param>
/// <param name="Elapsed">Time since training started.</param>
public sealed record EpochMetrics(int Epoch, int Epochs, double TrainLoss, double TrainAccuracy, double? ValidationLoss,
    double? ValidationAccuracy, double LearningRate, double ImagesPerSecond, TimeSpan Elapsed);

/// <summary>Loss and accuracy of a model on a set of images.</summary>
/// <param name="Loss">Mean cross-entropy.</param>
/// <param name="Accuracy">Top-1 accuracy.</param>
/// <param name="Count">Images evaluated.</param>
public sealed record EvaluationResult(double Loss, double Accuracy, int Count);
