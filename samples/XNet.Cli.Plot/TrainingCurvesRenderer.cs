using ScottPlot;

namespace XNet.Cli.Plot;

/// <summary>
/// Renders training curves with ScottPlot: loss per epoch above, top-1 accuracy (%) per epoch below, for the training
/// set and, when given, the validation set, with the best validation epoch marked. Plain arrays in, PNG bytes out, so
/// the CLI can call it across an AssemblyLoadContext boundary.
/// </summary>
public static class TrainingCurvesRenderer
{
    /// <summary>Renders the curves as a PNG.</summary>
    /// <param name="epochs">1-based epoch numbers.</param>
    /// <param name="trainLoss">Training loss per epoch.</param>
    /// <param name="trainAccuracy">Training top-1 accuracy per epoch, as a fraction.</param>
    /// <param name="validationLoss">Validation loss per epoch, or null.</param>
    /// <param name="validationAccuracy">Validation top-1 accuracy per epoch, as a fraction, or null.</param>
    /// <param name="bestEpoch">Epoch of the best validation accuracy to mark, or 0.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <returns>The PNG file's bytes.</returns>
    public static byte[] RenderPng(double[] epochs, double[] trainLoss, double[] trainAccuracy, double[]? validationLoss,
        double[]? validationAccuracy, int bestEpoch, int width, int height)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        var loss = multiplot.GetPlot(0);
        var accuracy = multiplot.GetPlot(1);

        AddLine(loss, epochs, trainLoss, "train");
        AddLine(accuracy, epochs, trainAccuracy.Select(a => 100 * a).ToArray(), "train");
        if (validationLoss is not null && validationAccuracy is not null)
        {
            AddLine(loss, epochs, validationLoss, "validation");
            AddLine(accuracy, epochs, validationAccuracy.Select(a => 100 * a).ToArray(), "validation");
        }

        if (bestEpoch > 0 && validationAccuracy is not null)
        {
            var marker = accuracy.Add.VerticalLine(bestEpoch);
            marker.LinePattern = LinePattern.Dashed;
            marker.LegendText = FormattableString.Invariant(
                $"best validation {100 * validationAccuracy[Array.IndexOf(epochs, (double)bestEpoch)]:F2} % (epoch {bestEpoch})");
        }

        loss.Title("Cross-entropy loss per epoch");
        loss.YLabel("loss");
        accuracy.Title("Top-1 accuracy per epoch");
        accuracy.YLabel("accuracy (%)");
        loss.ShowLegend(Alignment.UpperRight);
        accuracy.ShowLegend(Alignment.LowerRight);
        foreach (var plot in new[] { loss, accuracy })
        {
            plot.XLabel("epoch");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            if (epochs.Length == 1)
            {
                plot.Axes.SetLimitsX(epochs[0] - 0.5, epochs[0] + 0.5);
            }
        }

        return multiplot.Render(width, height).GetImageBytes(ImageFormat.Png);
    }

    private static void AddLine(ScottPlot.Plot plot, double[] epochs, double[] values, string label)
    {
        var line = plot.Add.Scatter(epochs, values);
        line.LegendText = label;
        line.MarkerSize = 5;
    }
}
