using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using XNet.MLNet.Training;

namespace XNet.Cli.Display;

/// <summary>
/// Writes the training curves of a run (loss and top-1 accuracy per epoch, train and validation) as a PNG, atomically.
/// The rendering (ScottPlot, SkiaSharp 3.119) lives in XNet.Cli.Plot, copied to the plot/ folder next to xnet and loaded
/// into its own AssemblyLoadContext, because ML.NET ImageAnalytics (used by <c>xnet predict</c>) needs SkiaSharp 2.88.
/// </summary>
internal static class TrainingCurvesPlot
{
    /// <summary>File name of the plot in the run folder.</summary>
    public const string FileName = "training-curves.png";

    private static readonly Lazy<MethodInfo> Renderer = new(LoadRenderer);

    /// <summary>Renders <paramref name="history"/> and writes it to <paramref name="path"/> (temporary file, then rename).</summary>
    /// <exception cref="ArgumentException">When the history is empty.</exception>
    /// <exception cref="InvalidOperationException">When the renderer in plot/ is missing.</exception>
    public static void Write(TrainingHistory history, string path, int width = 900, int height = 800)
    {
        if (history.Count == 0)
        {
            throw new ArgumentException("No epoch has run, so there are no training curves to plot.", nameof(history));
        }

        bool validated = history.All(m => m.ValidationAccuracy is not null);
        object?[] arguments =
        {
            history.Select(m => (double)m.Epoch).ToArray(),
            history.Select(m => m.TrainLoss).ToArray(),
            history.Select(m => m.TrainAccuracy).ToArray(),
            validated ? history.Select(m => m.ValidationLoss!.Value).ToArray() : null,
            validated ? history.Select(m => m.ValidationAccuracy!.Value).ToArray() : null,
            validated ? history.BestValidationEpoch ?? 0 : 0,
            width,
            height,
        };
        byte[] png;
        try
        {
            png = (byte[])Renderer.Value.Invoke(null, arguments)!;
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            throw new InvalidOperationException($"Rendering the training curves failed: {ex.InnerException.Message}", ex.InnerException);
        }

        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp";
        File.WriteAllBytes(temp, png);
        File.Move(temp, full, overwrite: true);
    }

    private static MethodInfo LoadRenderer()
    {
        string assembly = Path.Combine(AppContext.BaseDirectory, "plot", "XNet.Cli.Plot.dll");
        if (!File.Exists(assembly))
        {
            throw new InvalidOperationException(
                $"The training-curve renderer '{assembly}' is missing; build samples/XNet.Cli (it copies XNet.Cli.Plot to plot/).");
        }

        var context = new PlotLoadContext(assembly);
        return context.LoadFromAssemblyPath(assembly)
            .GetType("XNet.Cli.Plot.TrainingCurvesRenderer", throwOnError: true)!
            .GetMethod("RenderPng", BindingFlags.Public | BindingFlags.Static)!;
    }

    /// <summary>Resolves ScottPlot, SkiaSharp and their native libraries from plot/ (its deps.json), everything else from the default context.</summary>
    private sealed class PlotLoadContext(string assembly) : AssemblyLoadContext("xnet-plot")
    {
        private readonly AssemblyDependencyResolver resolver = new(assembly);

        protected override Assembly? Load(AssemblyName name) =>
            resolver.ResolveAssemblyToPath(name) is string path ? LoadFromAssemblyPath(path) : null;

        protected override IntPtr LoadUnmanagedDll(string name) =>
            resolver.ResolveUnmanagedDllToPath(name) is string path ? NativeLibrary.Load(path) : IntPtr.Zero;
    }
}
