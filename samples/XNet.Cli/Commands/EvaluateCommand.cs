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
        var mlContext = new MLContext();
        if (MlNetZipModel.IsMlNetZip(settings.Model))
        {
            using var zip = MlNetZipModel.Load(mlContext, settings.Model);
            return Evaluate(mlContext, settings, zip.Architecture + " (ML.NET zip, ONNX Runtime)", zip.InputShape, zip.ClassNames, zip.Transformer);
        }

        using var model = new XNetTransformer(XNetModelFile.Load(settings.Model));
        return Evaluate(mlContext, settings, model.Model.Architecture, model.Model.InputShape, model.Model.ClassNames, model);
    }

    private static int Evaluate(MLContext mlContext, Settings settings, string name, Architectures.ImageShape shape,
        IReadOnlyList<string> classNames, ITransformer model)
    {
        var data = DatasetSource.Load(mlContext, settings.Data, settings.Split, shape, settings.SkipUnreadable);
        if (!data.ClassNames.SequenceEqual(classNames))
        {
            throw new InvalidOperationException(
                $"The dataset's classes ({string.Join(", ", data.ClassNames.Take(5))}{(data.ClassNames.Count > 5 ? ", ..." : "")}; {data.ClassNames.Count}) " +
                $"are not the model's ({string.Join(", ", classNames.Take(5))}{(classNames.Count > 5 ? ", ..." : "")}; {classNames.Count}).");
        }

        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet evaluate[/]: {name} on {data.Data.GetRowCount():N0} {settings.Split} images from [grey]{settings.Data ?? DatasetSource.Embedded}[/]");
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(data.Data), topKPredictionCount: Math.Min(5, data.ClassNames.Count));
        MetricsReport.Write(metrics, classNames);
        return 0;
    }
}
