using System.ComponentModel;
using Microsoft.ML;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Cli.Display;
using XNet.MLNet;

namespace XNet.Cli.Commands;

/// <summary><c>xnet evaluate</c>: a saved model scored on a dataset split with ML.NET's multiclass metrics.</summary>
internal sealed class EvaluateCommand : Command<EvaluateCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <FILE>")]
        [Description("A model saved by 'xnet train' (model.xnet in its run folder) or an ML.NET zip with an X-Net (told apart by content).")]
        [DefaultValue("xnet-run/model.xnet")]
        public string Model { get; init; } = "xnet-run/model.xnet";

        [CommandOption("--data <DIR>")]
        [Description("Dataset folder, as for 'xnet train' (default: the embedded Fashion-MNIST subset). Image folders are read at the model's input size.")]
        public string? Data { get; init; }

        [CommandOption("--split <NAME>")]
        [Description("test (CIFAR test batch, idx t10k, image folder val/, valid/, validation/ or test/) or train.")]
        [DefaultValue("test")]
        public string Split { get; init; } = "test";

        [CommandOption("--skip-unreadable")]
        [Description("Image folders only: skip (and list) files that cannot be decoded instead of stopping.")]
        public bool SkipUnreadable { get; init; }

        [CommandOption("--cache-dir <DIR>")]
        [Description(DatasetSource.CacheDirectoryHelp)]
        public string? CacheDirectory { get; init; }

        public override ValidationResult Validate() =>
            Split.ToLowerInvariant() is not ("test" or "train") ? ValidationResult.Error($"--split '{Split}' is not known; expected test or train")
            : DatasetSource.CacheDirectoryError(CacheDirectory) is string cacheError ? ValidationResult.Error(cacheError)
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var mlContext = new MLContext();
        using var model = SavedModel.Load(mlContext, settings.Model);
        var data = DatasetSource.Load(mlContext, settings.Data, settings.Split, model.InputShape, settings.SkipUnreadable, settings.CacheDirectory);
        if (!data.ClassNames.SequenceEqual(model.ClassNames))
        {
            throw new InvalidOperationException(
                $"The dataset's classes ({Describe(data.ClassNames)}) are not the model's ({Describe(model.ClassNames)}).");
        }

        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet evaluate[/]: {model.Description} on {data.Data.GetRowCount():N0} {settings.Split} images from [grey]{settings.Data ?? DatasetSource.Embedded}[/]");
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transformer.Transform(data.Data),
            topKPredictionCount: Math.Min(5, data.ClassNames.Count));
        MetricsReport.Write(metrics, model.ClassNames);
        return 0;
    }

    private static string Describe(IReadOnlyList<string> classes) =>
        $"{string.Join(", ", classes.Take(5))}{(classes.Count > 5 ? ", ..." : "")}; {classes.Count}";
}
