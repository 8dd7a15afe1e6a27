using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;
using XNet.MLNet.Training;

namespace XNet.Cli.Display;

/// <summary>
/// Writes the training curves of a run as a PNG (OxyPlot on SkiaSharp): loss per epoch on the left, top-1 accuracy per
/// epoch on the right, for the training set and, when there is one, the validation set, with the best validation epoch
/// marked. The file is written atomically.
/// </summary>
internal static class TrainingCurvesPlot
{
    /// <summary>Renders <paramref name="history"/> and writes it to <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">When the history is empty.</exception>
    public static void Write(TrainingHistory history, string path, int width = 1200, int height = 480)
    {
        if (history.Count == 0)
        {
            throw new ArgumentException("No epoch has run, so there are no training curves to plot.", nameof(history));
        }

        bool validated = history.All(m => m.ValidationAccuracy is not null);
        var loss = Chart("Cross-entropy loss", "loss");
        var accuracy = Chart("Top-1 accuracy", "accuracy (%)");
        loss.Series.Add(Line("train", history.Select(m => (m.Epoch, m.TrainLoss))));
        accuracy.Series.Add(Line("train", history.Select(m => (m.Epoch, 100 * m.TrainAccuracy))));
        if (validated)
        {
            loss.Series.Add(Line("validation", history.Select(m => (m.Epoch, m.ValidationLoss!.Value))));
            accuracy.Series.Add(Line("validation", history.Select(m => (m.Epoch, 100 * m.ValidationAccuracy!.Value))));
            if (history.BestValidationEpoch is int best && history.BestValidationAccuracy is double bestAccuracy)
            {
                accuracy.Annotations.Add(new LineAnnotation
                {
                    Type = LineAnnotationType.Vertical,
                    X = best,
                    LineStyle = LineStyle.Dash,
                    Text = FormattableString.Invariant($"best validation {100 * bestAccuracy:F2} % (epoch {best})"),
                });
            }
        }

        PngFile.Write(path, width, height, loss, accuracy);
    }

    private static PlotModel Chart(string title, string yTitle)
    {
        var model = new PlotModel { Title = title, Background = OxyColors.White };
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = "epoch", MinimumMajorStep = 1, MinimumMinorStep = 1 });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = yTitle, MajorGridlineStyle = LineStyle.Dot });
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.RightTop, LegendPlacement = LegendPlacement.Inside });
        return model;
    }

    private static LineSeries Line(string title, IEnumerable<(int Epoch, double Value)> points)
    {
        var series = new LineSeries { Title = title, MarkerType = MarkerType.Circle, MarkerSize = 3 };
        series.Points.AddRange(points.Select(p => new DataPoint(p.Epoch, p.Value)));
        return series;
    }
}
