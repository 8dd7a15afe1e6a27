using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Series;
using XNet.MLNet.Experiments;

namespace XNet.Cli.Display;

/// <summary>
/// The plots of an experiment (OxyPlot on SkiaSharp): test accuracy against MACs and against effective parameters, one
/// point per model with the standard deviation over seeds as error bars, a logarithmic cost axis, and the Pareto front
/// (the models no other model beats at lower or equal cost). Each file is written atomically.
/// </summary>
internal static class ExperimentPlot
{
    /// <summary>Accuracy against multiply-accumulates per image.</summary>
    public const string MacsFile = "accuracy-vs-macs.png";

    /// <summary>Accuracy against effective parameters.</summary>
    public const string ParametersFile = "accuracy-vs-parameters.png";

    /// <summary>Writes both plots of <paramref name="summaries"/> into <paramref name="folder"/>.</summary>
    public static void Write(IReadOnlyList<ExperimentSummary> summaries, string title, string folder)
    {
        Write(summaries, title, "MACs per image", s => s.MultiplyAccumulates, Path.Combine(folder, MacsFile));
        Write(summaries, title, "effective parameters", s => s.Parameters, Path.Combine(folder, ParametersFile));
    }

    /// <summary>A cost as a short count: 72K, 8M, 31M.</summary>
    private static string Count(double value) =>
        value >= 1e6 ? FormattableString.Invariant($"{value / 1e6:0.#}M")
        : value >= 1e3 ? FormattableString.Invariant($"{value / 1e3:0.#}K")
        : FormattableString.Invariant($"{value:0}");

    private static void Write(IReadOnlyList<ExperimentSummary> summaries, string title, string costName, Func<ExperimentSummary, long> cost,
        string path)
    {
        var model = new PlotModel { Title = $"{title}: test accuracy against {costName}", Background = OxyColors.White };
        model.Axes.Add(new LogarithmicAxis
        {
            Position = AxisPosition.Bottom, Title = costName, MajorGridlineStyle = LineStyle.Dot, MinimumPadding = 0.15, MaximumPadding = 0.15,
            IntervalLength = 90, LabelFormatter = Count, // wide enough apart that labels such as 7M and 8M do not run together
        });
        // The accuracy axis spans the error bars (OxyPlot's own range covers the points only and cut them off), and at
        // least one point of accuracy: a plan of one model spans nothing, which the axis widened to 40-140 %.
        double low = summaries.Min(s => 100 * (s.TestAccuracy - s.TestAccuracySd)), high = summaries.Max(s => 100 * (s.TestAccuracy + s.TestAccuracySd));
        double centre = (low + high) / 2, half = Math.Max(high - low, 1) / 2 * 1.2;
        model.Axes.Add(new LinearAxis
        {
            Position = AxisPosition.Left, Title = "test accuracy (%), mean ± sd", MajorGridlineStyle = LineStyle.Dot, Minimum = centre - half,
            Maximum = centre + half,
        });
        var points = new ScatterErrorSeries { Title = "models", MarkerType = MarkerType.Circle, MarkerSize = 4, ErrorBarStrokeThickness = 1.5 };
        foreach (var s in summaries)
        {
            // OxyPlot draws an error bar ErrorY long in all, half above the point and half below: 2 sd for mean ± sd.
            points.Points.Add(new ScatterErrorPoint(cost(s), 100 * s.TestAccuracy, 0, 2 * 100 * s.TestAccuracySd));
            model.Annotations.Add(new OxyPlot.Annotations.TextAnnotation
            {
                Text = s.Model,
                TextPosition = new DataPoint(cost(s), 100 * s.TestAccuracy),
                TextVerticalAlignment = VerticalAlignment.Bottom,
                Stroke = OxyColors.Transparent,
                FontSize = 10,
            });
        }

        model.Series.Add(points);
        var front = new LineSeries { Title = "Pareto front", LineStyle = LineStyle.Dash, MarkerType = MarkerType.Square, MarkerSize = 5 };
        double best = double.NegativeInfinity;
        foreach (var s in summaries.OrderBy(cost).ThenByDescending(s => s.TestAccuracy))
        {
            if (s.TestAccuracy > best)
            {
                best = s.TestAccuracy;
                front.Points.Add(new DataPoint(cost(s), 100 * s.TestAccuracy));
            }
        }

        model.Series.Add(front);
        PngFile.Write(path, 900, 600, model);
    }
}
