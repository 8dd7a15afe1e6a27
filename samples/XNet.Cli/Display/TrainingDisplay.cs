using Spectre.Console;
using XNet.MLNet;
using XNet.MLNet.Training;

namespace XNet.Cli.Display;

/// <summary>
/// Live training progress: one bar per epoch with loss, accuracy and throughput on an interactive terminal; plain
/// lines (every 20 batches and at each epoch's end) when the output is redirected to a file or a pipe.
/// </summary>
internal static class TrainingDisplay
{
    /// <remarks>A <see cref="XNetTrainer.Options.MetricsCallback"/> set before is still called.</remarks>
    public static T Run<T>(XNetTrainer.Options options, Func<T> fit)
    {
        var previous = options.MetricsCallback;
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            options.ProgressCallback = p =>
            {
                if (p.Batch % 20 == 0)
                {
                    Console.WriteLine($"epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches}: {Describe(p)}");
                }
            };
            options.MetricsCallback = m =>
            {
                previous?.Invoke(m);
                Console.WriteLine(Describe(m));
            };
            return fit();
        }

        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                ProgressTask? task = null;
                options.ProgressCallback = p =>
                {
                    if (task is null || p.Batch == 1)
                    {
                        task = context.AddTask($"epoch {p.Epoch}/{p.Epochs}", maxValue: p.Batches);
                    }

                    task.Value = p.Batch;
                    task.Description = $"epoch {p.Epoch}/{p.Epochs} batch {p.Batch,4}/{p.Batches}  {Describe(p)}";
                };
                options.MetricsCallback = m =>
                {
                    previous?.Invoke(m);
                    if (task is not null)
                    {
                        task.Description = Describe(m).EscapeMarkup();
                        task.StopTask();
                    }
                };
                result = fit();
            });
        return result;
    }

    private static string Describe(BatchProgress p) =>
        $"loss {p.Loss:F4}  acc {p.Accuracy:P1}  lr {p.LearningRate:G3}  {p.ImagesPerSecond:F0} img/s";

    /// <summary>Final-epoch metrics, then the best validation epoch on its own line (never mixed with the final ones).</summary>
    public static void Summary(TrainingHistory history)
    {
        var final = history.Final;
        string validation = final.ValidationAccuracy is double v
            ? $", validation top-1 {v:P2} top-5 {final.ValidationTop5Accuracy:P2} loss {final.ValidationLoss:F4}"
            : "";
        AnsiConsole.MarkupLineInterpolated(
            $"Final epoch {final.Epoch}: train top-1 {final.TrainAccuracy:P2} top-5 {final.TrainTop5Accuracy:P2} loss {final.TrainLoss:F4}{validation}");
        if (history.BestValidation is { } best)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"Best validation top-1 {best.ValidationAccuracy:P2} at epoch {best.Epoch} (selected on the validation split; the model holds epoch {history.KeptEpoch}'s weights)");
        }
    }

    private static string Describe(EpochMetrics m)
    {
        string validation = m.ValidationAccuracy is double accuracy
            ? $"  val loss {m.ValidationLoss:F4} acc {accuracy:P1} top-5 {m.ValidationTop5Accuracy:P1}"
            : "";
        return $"epoch {m.Epoch}/{m.Epochs}  loss {m.TrainLoss:F4}  acc {m.TrainAccuracy:P1} top-5 {m.TrainTop5Accuracy:P1}{validation}  {m.ImagesPerSecond:F0} img/s  {m.Elapsed:mm\\:ss}";
    }
}
