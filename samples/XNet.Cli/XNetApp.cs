using System.Runtime.InteropServices;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Architectures;
using XNet.Cli.Commands;

namespace XNet.Cli;

/// <summary>The <c>xnet</c> command line: its commands, and one entry point that turns expected failures into exit codes.</summary>
internal static class XNetApp
{
    /// <summary>
    /// The library's version and the commit it was built from (<c>0.1.0+40-hex-digit hash</c>), which <c>--version</c>
    /// prints: runs compare across builds only when their kernels agree, so a result should name its build.
    /// </summary>
    public static string Version { get; } =
        typeof(XNet.MLNet.XNetTrainer).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";

    /// <summary>
/// Runs <c>xnet</c> with <paramref name="args"/> and returns the exit code (0 success, 1 failure, 2 bad usage, 130 Ctrl+C,
/// 143 SIGTERM); <c>--verbose</c>, anywhere, shows an unexpected failure's stack trace.
/// </summary>
    public static int Run(string[] args)
    {
        // A training job: keep libtorch's large buffers in the heap instead of page-faulting fresh ones on every call
        // (ResNet-20 on Fashion-MNIST: 960 -> 1,130-1,170 images/s; docs/benchmarks.md).
        GlibcAllocator.KeepFreedMemory();
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("xnet");
            config.SetApplicationVersion(Version); // xnet --version
            config.AddCommand<TrainCommand>("train")
                .WithDescription("Train an X-Net on CIFAR-10/100, idx (MNIST/Fashion-MNIST) or an image folder (the embedded Fashion-MNIST subset by default), evaluate it with ML.NET's metrics and save it.")
                .WithExample("train")
                .WithExample("train", "--data", "/usr/share/datasets/fashion-mnist", "--model", "x-resnet-20-4", "--epochs", "10");
            config.AddCommand<PredictCommand>("predict")
                .WithDescription("Classify one image file with a saved model.")
                .WithExample("predict", "--model", "xnet-run/model.xnet", "--image", "shoe.png")
                .WithExample("predict", "--model", "model.zip", "--image", "shoe.png");
            config.AddCommand<EvaluateCommand>("evaluate")
                .WithDescription("Score a saved model on a dataset split with ML.NET's metrics (accuracy, top-5, log-loss, confusion matrix).")
                .WithExample("evaluate", "--model", "xnet-run/model.xnet", "--data", "/data/cifar-10-batches-bin");
            config.AddCommand<ExportCommand>("export")
                .WithDescription("Write a saved model as ONNX and/or as an ML.NET model zip that loads with only Microsoft.ML + OnnxTransformer + OnnxRuntime.")
                .WithExample("export", "--model", "xnet-run/model.xnet", "--onnx", "model.onnx", "--mlnet", "model.zip");
            config.AddCommand<SweepCommand>("sweep")
                .WithDescription("Run an experiment plan (models x seeds, one recipe; finished runs are skipped, interrupted ones resumed) and write results.csv, results.md and accuracy-against-cost plots.")
                .WithExample("sweep", "plans/equal-density.json");
            config.AddCommand<BenchCommand>("bench")
                .WithDescription("Measure training and scoring images/s of a model and its dense twin on this machine, side by side.")
                .WithExample("bench", "x-resnet-20-4", "--input", "1x28x28")
                .WithExample("bench", "x-mobilenet-0.5-4", "--input", "3x96x96", "--classes", "10");
            config.AddCommand<ModelsCommand>("models")
                .WithDescription("List the architectures of the model zoo with effective parameters and MACs at their reference input.")
                .WithExample("models", "densenet-bc");
            config.ConfigureConsole(AnsiConsole.Console); // help and usage go where the rest of the output goes
            config.PropagateExceptions();
            config.UseStrictParsing();
        });

        // Ctrl+C and SIGTERM (a scheduler's or container's stop) stop training at the next batch boundary, after a
        // checkpoint, instead of killing the process; the exit code says which (130 or 143). A second signal, or one
        // during a command with nothing to save, ends the process at once.
        using var cancel = new CancellationTokenSource();
        int signalExit = 0;
        bool saves = args.FirstOrDefault() is "train" or "sweep";
        void Stop(PosixSignalContext context, int exitCode)
        {
            context.Cancel = saves && !cancel.IsCancellationRequested;
            signalExit = exitCode;
            cancel.Cancel();
        }

        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, 130));
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, 143));
        bool verbose = args.Contains("--verbose");
        int exit = CliErrors.Run(() => app.Run(args.Where(a => a != "--verbose"), cancel.Token), verbose, args);
        return exit == 130 && signalExit != 0 ? signalExit : exit;
    }
}
