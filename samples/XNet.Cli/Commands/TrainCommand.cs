using System.ComponentModel;
using Microsoft.ML;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Cli.Display;
using XNet.MLNet;
using XNet.MLNet.Data;

namespace XNet.Cli.Commands;

/// <summary>
/// <c>xnet train</c>: Fashion-MNIST (or MNIST) idx files -> ML.NET pipeline with the X-Net trainer -> ML.NET metrics on
/// the test split -> saved model.
/// </summary>
internal sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <DIR>")]
        [Description("Folder with train-/t10k- images and labels idx files (gzip optional). Default: the embedded Fashion-MNIST subset (8,000 train, 2,000 test).")]
        public string? Data { get; init; }

        [CommandOption("--model <NAME>")]
        [Description("Architecture from the zoo ('xnet models' lists them).")]
        [DefaultValue("x-resnet-20-4")]
        public string Model { get; init; } = "x-resnet-20-4";

        [CommandOption("--epochs <N>")]
        [Description("Passes over the training data.")]
        [DefaultValue(8)]
        public int Epochs { get; init; } = 8;

        [CommandOption("--batch-size <N>")]
        [Description("Images per optimiser step.")]
        [DefaultValue(128)]
        public int BatchSize { get; init; } = 128;

        [CommandOption("--lr <RATE>")]
        [Description("Base learning rate (SGD, Nesterov momentum 0.9, cosine schedule with one warm-up epoch).")]
        [DefaultValue(0.1f)]
        public float LearningRate { get; init; } = 0.1f;

        [CommandOption("--weight-decay <WD>")]
        [Description("L2 weight decay.")]
        [DefaultValue(5e-4f)]
        public float WeightDecay { get; init; } = 5e-4f;

        [CommandOption("--seed <N>")]
        [Description("Seed of weights, expander graphs, shuffling and augmentation.")]
        [DefaultValue(0)]
        public int Seed { get; init; }

        [CommandOption("--device <DEVICE>")]
        [Description("auto (CUDA when available), cpu, cuda or cuda:N.")]
        [DefaultValue("auto")]
        public string Device { get; init; } = "auto";

        [CommandOption("--validation-fraction <F>")]
        [Description("Hold out this fraction of the training data and report validation metrics each epoch.")]
        public float? ValidationFraction { get; init; }

        [CommandOption("--output <FILE>")]
        [Description("Where to save the trained model.")]
        [DefaultValue("xnet-model.xnet")]
        public string Output { get; init; } = "xnet-model.xnet";

        public override ValidationResult Validate() =>
            Epochs < 1 ? ValidationResult.Error("--epochs must be at least 1")
            : BatchSize < 1 ? ValidationResult.Error("--batch-size must be at least 1")
            : !(LearningRate > 0) ? ValidationResult.Error("--lr must be positive")
            : ValidationFraction is float f && !(f > 0 && f < 1) ? ValidationResult.Error("--validation-fraction must lie in (0, 1)")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string directory = settings.Data ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");
        var mlContext = new MLContext(seed: settings.Seed);
        var (trainImages, trainLabels) = FashionMnist.Files(directory, "train");
        var (testImages, testLabels) = FashionMnist.Files(directory, "t10k");
        var train = IdxDataset.Load(mlContext, trainImages, trainLabels, FashionMnist.ClassNames);
        var test = IdxDataset.Load(mlContext, testImages, testLabels, FashionMnist.ClassNames);
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet train[/]: {settings.Model} on {train.GetRowCount():N0} training and {test.GetRowCount():N0} test images from [grey]{directory}[/]");

        var options = new XNetTrainer.Options
        {
            Architecture = settings.Model,
            Epoch = settings.Epochs,
            BatchSize = settings.BatchSize,
            LearningRate = settings.LearningRate,
            WeightDecay = settings.WeightDecay,
            Seed = settings.Seed,
            Device = settings.Device,
            ValidationSetFraction = settings.ValidationFraction,
            CancellationToken = cancellationToken,
        };

        // The ML.NET pipeline: the idx loader already gives a key-typed Label and a Vector<Single, 1, 28, 28> Features column.
        var pipeline = mlContext.MulticlassClassification.Trainers.XNet(options);
        var model = TrainingDisplay.Run(options, () => pipeline.Fit(train));
        using (model)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"Trained {model.Model.Architecture}: {model.Model.ParameterCount:N0} parameters on {model.Model.Device.type}.");
            var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test));
            MetricsReport.Write(metrics, model.Model.ClassNames);
            model.Model.Save(settings.Output);
            AnsiConsole.MarkupLineInterpolated($"Model saved to [green]{Path.GetFullPath(settings.Output)}[/]");
        }

        return 0;
    }
}
