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
        [Description("A model saved by 'xnet train' (model.xnet in its run folder).")]
        [DefaultValue("xnet-run/model.xnet")]
        public string Model { get; init; } = "xnet-run/model.xnet";

        [CommandOption("--data <DIR>")]
        [Description("Dataset folder, as for 'xnet train' (default: the embedded Fashion-MNIST subset). Image folders are read at the model's input size.")]
        public string? Data { get; init; }

        [CommandOption("--split <NAME>")]
        [Description("test (CIFAR test batch, idx t10k, image folder val/ or test/) or train.")]
        [DefaultValue("test")]
        public string Split { get; init; } = "test";

        [CommandOption("--skip-unreadable")]
        [Description("Image folders only: skip (and list) files that cannot be decoded instead of stopping.")]
        public bool SkipUnreadable { get; init; }

        public override ValidationResult Validate() =>
            Split.ToLowerInvariant() is "test" or "train" ? ValidationResult.Success()
                : ValidationResult.Error($"--split '{Split}' is not known; expected test or train");
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        using var model = XNetTransformer.Load(settings.Model);
        var mlContext = new MLContext();
        var data = DatasetSource.Load(mlContext, settings.Data, settings.Split, model.Model.InputShape, settings.SkipUnreadable);
        if (!data.ClassNames.SequenceEqual(model.Model.ClassNames))
        {
            throw new InvalidOperationException(
                $"The dataset's classes ({string.Join(", ", data.ClassNames.Take(5))}{(data.ClassNames.Count > 5 ? ", ..." : "")}; {data.ClassNames.Count}) " +
                $"are not the model's ({string.Join(", ", model.Model.ClassNames.Take(5))}{(model.Model.ClassNames.Count > 5 ? ", ..." : "")}; {model.Model.ClassNames.Count}).");
        }

        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet evaluate[/]: {model.Model.Architecture} on {data.Data.GetRowCount():N0} {settings.Split} images from [grey]{settings.Data ?? DatasetSource.Embedded}[/]");
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(data.Data), topKPredictionCount: Math.Min(5, data.ClassNames.Count));
        MetricsReport.Write(metrics, model.Model.ClassNames);
        return 0;
    }
}
