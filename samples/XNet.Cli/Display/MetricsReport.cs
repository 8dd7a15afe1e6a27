using System.Globalization;
using Microsoft.ML.Data;
using Spectre.Console;

namespace XNet.Cli.Display;

/// <summary>
/// ML.NET's multiclass metrics on a test split: micro/macro accuracy, top-5 accuracy, log-loss and, for up to
/// <see cref="MaxMatrixClasses"/> classes, the confusion matrix.
/// </summary>
internal static class MetricsReport
{
    /// <summary>Above this many classes (CIFAR-100, ImageNet) the confusion matrix is too wide to print.</summary>
    public const int MaxMatrixClasses = 20;

    public static void Write(MulticlassClassificationMetrics metrics, IReadOnlyList<string> classNames)
    {
        string top5 = metrics.TopKPredictionCount > 0 ? $", top-{metrics.TopKPredictionCount} accuracy {metrics.TopKAccuracy:F4}" : "";
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]Test metrics (ML.NET)[/]: micro-accuracy [green]{metrics.MicroAccuracy:F4}[/], macro-accuracy {metrics.MacroAccuracy:F4}{top5}, log-loss {metrics.LogLoss:F4}, log-loss reduction {metrics.LogLossReduction:F4}");
        if (metrics.ConfusionMatrix.NumberOfClasses > MaxMatrixClasses)
        {
            return;
        }

        // Compact enough for an 80-column terminal: rows are true classes, columns predicted class indices.
        var matrix = metrics.ConfusionMatrix;
        var table = new Table().Border(TableBorder.Simple).Title("confusion matrix (rows: true class, columns: predicted)")
            .AddColumn("true class");
        for (int c = 0; c < matrix.NumberOfClasses; c++)
        {
            table.AddColumn(new TableColumn(c.ToString(CultureInfo.InvariantCulture)).RightAligned().PadLeft(0).PadRight(1));
        }

        table.AddColumn(new TableColumn("recall").RightAligned());
        for (int r = 0; r < matrix.NumberOfClasses; r++)
        {
            var cells = new List<string> { Label(classNames, r) };
            cells.AddRange(matrix.Counts[r].Select((n, c) => c == r ? $"[green]{n:F0}[/]" : n == 0 ? "[grey]·[/]" : n.ToString("F0", CultureInfo.InvariantCulture)));
            cells.Add(matrix.PerClassRecall[r].ToString("F3", CultureInfo.InvariantCulture));
            table.AddRow(cells.ToArray());
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("precision: " + string.Join("  ", matrix.PerClassPrecision.Select((p, c) =>
            $"{c}:{p.ToString("F3", CultureInfo.InvariantCulture)}")));
    }

    private static string Label(IReadOnlyList<string> classNames, int index)
    {
        string name = index < classNames.Count ? classNames[index] : "";
        return $"{index} {(name.Length > 11 ? name[..11] : name)}".EscapeMarkup();
    }
}
