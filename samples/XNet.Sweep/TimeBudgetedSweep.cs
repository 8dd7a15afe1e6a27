using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using XNet.MLNet;
using XNet.MLNet.Data;

namespace XNet.Sweep;

/// <summary>One point of the sweep.</summary>
/// <param name="Architecture">Zoo name.</param>
/// <param name="LearningRate">Base learning rate.</param>
/// <param name="Epochs">Passes over the training images.</param>
public sealed record Trial(string Architecture, float LearningRate, int Epochs);

/// <summary>What a trial gave.</summary>
/// <param name="Trial">The settings.</param>
/// <param name="Completed">False when the trial ran past its budget and was cancelled.</param>
/// <param name="MicroAccuracy">ML.NET's micro-accuracy on the validation images (completed trials).</param>
/// <param name="Elapsed">Wall time of the trial.</param>
public sealed record TrialResult(Trial Trial, bool Completed, double? MicroAccuracy, TimeSpan Elapsed);

/// <summary>
/// A small time-budgeted sweep written the way an AutoML trial runner works: every trial gets its own MLContext, and a
/// trial that outlives its budget is ended by cancelling that MLContext (<c>mlContext.CancelExecution()</c> of
/// Microsoft.ML.Experimental; AutoML does the same). The X-Net trainer stops at the next batch boundary.
/// </summary>
public static class TimeBudgetedSweep
{
    /// <summary>Four trials over architecture, learning rate and epochs; the last is sized to outlive a short budget.</summary>
    public static IReadOnlyList<Trial> DefaultTrials { get; } = new[]
    {
        new Trial("x-resnet-8-2", 0.05f, 1),
        new Trial("resnet-8", 0.05f, 1),
        new Trial("x-resnet-8-2", 0.1f, 2),
        new Trial("x-resnet-20-4", 0.1f, 30),
    };

    /// <summary>Runs <paramref name="trials"/> on the embedded subset, each within <paramref name="trialBudget"/>, and prints a table and the best trial.</summary>
    public static IReadOnlyList<TrialResult> Run(IReadOnlyList<Trial> trials, TimeSpan trialBudget, TextWriter output)
    {
        string data = Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");
        var results = new List<TrialResult>();
        output.WriteLine($"Sweep of {trials.Count} trials, {trialBudget.TotalSeconds:0} s each, on the embedded Fashion-MNIST subset.");
        foreach (var trial in trials)
        {
            var ml = new MLContext(seed: 0);
            var (trainImages, trainLabels) = FashionMnist.Files(data, "train");
            var (testImages, testLabels) = FashionMnist.Files(data, "t10k");
            var train = ml.Data.TakeRows(IdxDataset.Load(ml, trainImages, trainLabels, FashionMnist.ClassNames), 2000);
            var validation = ml.Data.TakeRows(IdxDataset.Load(ml, testImages, testLabels, FashionMnist.ClassNames), 500);
            var options = new XNetTrainer.Options
            {
                Architecture = trial.Architecture,
                LearningRate = trial.LearningRate,
                Epoch = trial.Epochs,
                BatchSize = 64,
                Seed = 0,
                Device = "cpu",
            };

            var clock = Stopwatch.StartNew();
            using var budget = new Timer(_ => CancelExecution(ml), null, trialBudget, Timeout.InfiniteTimeSpan);
            TrialResult result;
            try
            {
                using var model = ml.MulticlassClassification.Trainers.XNet(options).Fit(train);
                budget.Change(Timeout.Infinite, Timeout.Infinite);
                double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(validation)).MicroAccuracy;
                result = new TrialResult(trial, true, accuracy, clock.Elapsed);
            }
            catch (OperationCanceledException)
            {
                result = new TrialResult(trial, false, null, clock.Elapsed);
            }

            results.Add(result);
            string outcome = result.Completed
                ? string.Create(CultureInfo.InvariantCulture, $"accuracy {result.MicroAccuracy:P2}")
                : "cancelled past its budget";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {trial.Architecture,-14} lr {trial.LearningRate,-5} epochs {trial.Epochs,-3} {outcome}  {result.Elapsed.TotalSeconds:0.0} s"));
        }

        var best = results.Where(r => r.Completed).MaxBy(r => r.MicroAccuracy);
        output.WriteLine(best is null
            ? "No trial finished within its budget."
            : string.Create(CultureInfo.InvariantCulture,
                $"Best trial: {best.Trial.Architecture}, lr {best.Trial.LearningRate}, {best.Trial.Epochs} epoch(s): accuracy {best.MicroAccuracy:P2}."));
        return results;
    }

    /// <summary>
    /// Cancels the MLContext as <c>mlContext.CancelExecution()</c> of Microsoft.ML.Experimental does: that package's
    /// public extension calls this internal method. With the package, call the extension instead.
    /// </summary>
    private static void CancelExecution(MLContext ml) =>
        typeof(MLContext).GetMethod("CancelExecution", BindingFlags.Instance | BindingFlags.NonPublic)?.Invoke(ml, null);
}
