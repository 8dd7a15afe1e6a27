using OxyPlot;
using OxyPlot.SkiaSharp;
using SkiaSharp;
using XNet.MLNet.IO;

namespace XNet.Cli.Display;

/// <summary>
/// Renders OxyPlot charts side by side into one PNG, written atomically. Text is drawn
/// without HarfBuzz shaping: SkiaSharp 3's HarfBuzz native library is not in ML.NET's SkiaSharp packages.
/// </summary>
internal static class PngFile
{
    /// <summary>Writes <paramref name="charts"/>, each given an equal share of the width, to <paramref name="path"/>.</summary>
    public static void Write(string path, int width, int height, params PlotModel[] charts) => AtomicFile.Write(path, stream =>
    {
        using var bitmap = new SKBitmap(width, height);
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(SKColors.White);
        var context = new SkiaRenderContext { RenderTarget = RenderTarget.PixelGraphic, SkCanvas = canvas, UseTextShaping = false };
        double share = (double)width / charts.Length;
        for (int i = 0; i < charts.Length; i++)
        {
            canvas.Save();
            canvas.Translate((float)(i * share), 0);
            ((IPlotModel)charts[i]).Update(true);
            ((IPlotModel)charts[i]).Render(context, new OxyRect(0, 0, share, height));
            canvas.Restore();
            if (charts[i].GetLastPlotException() is Exception error)
            {
                throw new InvalidOperationException($"Plot '{charts[i].Title}' could not be drawn: {error.Message}", error);
            }
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        png.SaveTo(stream);
    });
}
