using System.Globalization;

namespace XNet.MLNet.Training;

/// <summary>The validation metric <see cref="EarlyStopping"/> watches (ML.NET's ImageClassificationTrainer has the same two).</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Validation top-1 accuracy: higher is better.</summary>
    Accuracy,

    /// <summary>Validation cross-entropy: lower is better.</summary>
    Loss,
}

/// <summary>
/// Stops training when the validation metric has not improved by at least <see cref="MinDelta"/> for
/// <see cref="Patience"/> epochs in a row, and restores the weights of the best epoch (by the same metric), as ML.NET's
/// ImageClassificationTrainer does with its <c>EarlyStoppingCriteria</c>. The decision is a function of the finished
/// epochs' metrics, so a resumed run stops where the uninterrupted one would.
/// </summary>
/// <param name="Metric">What to watch: validation accuracy (default) or validation loss.</param>
/// <param name="Patience">Epochs without an improvement of at least <paramref name="MinDelta"/> before stopping (default 3).</param>
/// <param name="MinDelta">The smallest change that counts as an improvement, in the metric's units (default 0.001, a tenth of a
/// point of accuracy).</param>
public sealed record EarlyStopping(EarlyStoppingMetric Metric = EarlyStoppingMetric.Accuracy, int Patience = 3, double MinDelta = 0.001)
{
    /// <summary>Whether training should stop after the epochs in <paramref name="history"/>.</summary>
    public bool ShouldStop(IReadOnlyList<EpochMetrics> history)
    {
        double? best = null;
        int since = 0;
        foreach (var epoch in history)
        {
            if (Value(Metric, epoch) is not double value)
            {
                continue;
            }

            if (best is not double b || Gain(Metric, value, b) >= MinDelta)
            {
                best = value;
                since = 0;
            }
            else
            {
                since++;
            }
        }

        return since >= Patience;
    }

    /// <summary>The epoch with the best value of <paramref name="metric"/> (the first of equals), or null without validation.</summary>
    public static EpochMetrics? Best(IEnumerable<EpochMetrics> history, EarlyStoppingMetric metric)
    {
        EpochMetrics? best = null;
        foreach (var epoch in history)
        {
            if (Value(metric, epoch) is double value && (best is null || Gain(metric, value, Value(metric, best)!.Value) > 0))
            {
                best = epoch;
            }
        }

        return best;
    }

    /// <summary>Throws when a value is out of range, naming the option.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When Patience, MinDelta or Metric is invalid.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Metric))
        {
            throw new ArgumentOutOfRangeException(nameof(Metric), Metric, $"EarlyStopping.Metric = {Metric} must be Accuracy or Loss.");
        }

        if (Patience < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Patience), Patience, $"EarlyStopping.Patience = {Patience} must be at least 1.");
        }

        if (!(MinDelta >= 0) || !double.IsFinite(MinDelta))
        {
            throw new ArgumentOutOfRangeException(nameof(MinDelta), MinDelta,
                string.Create(CultureInfo.InvariantCulture, $"EarlyStopping.MinDelta = {MinDelta} must be a finite number, not negative."));
        }
    }

    private static double? Value(EarlyStoppingMetric metric, EpochMetrics epoch) =>
        metric == EarlyStoppingMetric.Loss ? epoch.ValidationLoss : epoch.ValidationAccuracy;

    // How much better `value` is than `best` (positive: better).
    private static double Gain(EarlyStoppingMetric metric, double value, double best) =>
        metric == EarlyStoppingMetric.Loss ? best - value : value - best;
}
