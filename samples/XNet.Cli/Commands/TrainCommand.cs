using System.ComponentModel;
using System.Globalization;
using Microsoft.ML;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Cli.Display;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Data;
using XNet.MLNet.Training;

namespace XNet.Cli.Commands;

/// <summary>
/// <c>xnet train</c>, the paper's reference code's main.py: a dataset (CIFAR-10/100, idx, image folder; the embedded Fashion-MNIST subset
/// by default) -> ML.NET pipeline with the X-Net trainer -> ML.NET metrics on the test split -> saved model, metrics.csv
/// and training curves in the run folder.
/// </summary>
internal sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--data <DIR>")]
        [Description("Dataset folder: CIFAR-10 (cifar-10-batches-bin) or CIFAR-100 (cifar-100-binary) binary files, idx files (train-/t10k-images-idx3-ubyte[.gz], MNIST or Fashion-MNIST), or an image folder (root/train and root/val with one subfolder per class, or root/<class>). Default: the embedded Fashion-MNIST subset (8,000 train, 2,000 test).")]
        public string? Data { get; init; }

        [CommandOption("--image-size <PIXELS>")]
        [Description("Image folders only: the square size images are read at (shorter side to 8/7 of it, centre crop), the paper's reference code's --inpsize.")]
        [DefaultValue(224)]
        public int ImageSize { get; init; } = 224;

        [CommandOption("--skip-unreadable")]
        [Description("Image folders only: skip (and list) files that cannot be decoded instead of stopping.")]
        public bool SkipUnreadable { get; init; }

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
        [Description("Base (maximum) learning rate, the paper's reference code's maxlr.")]
        [DefaultValue(0.1f)]
        public float LearningRate { get; init; } = 0.1f;

        [CommandOption("--optimizer <NAME>")]
        [Description("sgd (momentum, Nesterov, weight decay) or adam (weight decay; momentum options ignored).")]
        [DefaultValue("sgd")]
        public string Optimizer { get; init; } = "sgd";

        [CommandOption("--momentum <M>")]
        [Description("SGD momentum, in [0, 1).")]
        [DefaultValue(0.9f)]
        public float Momentum { get; init; } = 0.9f;

        [CommandOption("--nesterov")]
        [Description("Nesterov momentum for SGD (the default).")]
        public bool Nesterov { get; init; }

        [CommandOption("--no-nesterov")]
        [Description("Plain momentum for SGD.")]
        public bool NoNesterov { get; init; }

        [CommandOption("--weight-decay <WD>")]
        [Description("L2 weight decay.")]
        [DefaultValue(5e-4f)]
        public float WeightDecay { get; init; } = 5e-4f;

        [CommandOption("--scheduler <NAME>")]
        [Description("cosine (linear warm-up, then cosine to --min-lr), step (the reference code's decayschedular: x--decay-level every --decay-interval epochs), cifar (x0.1 at 150, x0.01 at 225), imagenet (x0.1 every 30 epochs) or constant. All but cosine clamp at --min-lr.")]
        [DefaultValue("cosine")]
        public string Scheduler { get; init; } = "cosine";

        [CommandOption("--decay-interval <EPOCHS>")]
        [Description("Epochs between decays of --scheduler step.")]
        [DefaultValue(30)]
        public int DecayInterval { get; init; } = 30;

        [CommandOption("--decay-level <FACTOR>")]
        [Description("Multiplier per decay of --scheduler step (0.5 or 0.1; above 1 grows the rate).")]
        [DefaultValue(0.5f)]
        public float DecayLevel { get; init; } = 0.5f;

        [CommandOption("--min-lr <RATE>")]
        [Description("Lower clamp of the learning rate (cosine: its final value), the paper's reference code's minlr.")]
        [DefaultValue(0f)]
        public float MinLearningRate { get; init; }

        [CommandOption("--warmup-epochs <EPOCHS>")]
        [Description("Linear warm-up of --scheduler cosine (may be fractional; 0 disables it).")]
        [DefaultValue(1f)]
        public float WarmupEpochs { get; init; } = 1f;

        [CommandOption("--augment <KIND>")]
        [Description("crop-flip (zero-pad by --crop-padding, random crop, flip), random-resized-crop (scale 0.08-1, ratio 3/4-4/3, bilinear, flip) or none. Default: the paper's reference code's for the dataset (CIFAR: crop-flip with padding 4; image folders: random-resized-crop; idx: crop-flip with padding 2).")]
        public string? Augment { get; init; }

        [CommandOption("--crop-padding <PIXELS>")]
        [Description("Zero padding of --augment crop-flip (0 keeps only the flips). Default: 4 for CIFAR, 2 otherwise.")]
        public int? CropPadding { get; init; }

        [CommandOption("--no-flip")]
        [Description("No horizontal flips with either crop.")]
        public bool NoFlip { get; init; }

        [CommandOption("--channel-mean <VALUES>")]
        [Description("Per-channel mean in pixel units (0-255), comma-separated, one per channel. Default: the paper's reference code's constants for CIFAR-10/100 and RGB image folders (ImageNet's), otherwise computed from the training images.")]
        public string? ChannelMean { get; init; }

        [CommandOption("--channel-std <VALUES>")]
        [Description("Per-channel standard deviation in pixel units (0-255), comma-separated. Default: as --channel-mean.")]
        public string? ChannelStd { get; init; }

        [CommandOption("--keep-best")]
        [Description("Keep the weights of the best validation epoch instead of the final epoch's (needs --validation-fraction).")]
        public bool KeepBest { get; init; }

        [CommandOption("--resume <DIR>")]
        [Description("Continue the run in this run folder from its newest valid checkpoint, with the options it was started with (options given now override them). Bit-identical to an uninterrupted run on the CPU.")]
        public string? Resume { get; init; }

        [CommandOption("--checkpoint-every <BATCHES>")]
        [Description("Also checkpoint every this many batches (checkpoints are always written at epoch ends and on Ctrl+C).")]
        [DefaultValue(0)]
        public int CheckpointEvery { get; init; }

        [CommandOption("--keep-checkpoints <N>")]
        [Description("How many of the newest checkpoints to keep in <output-dir>/checkpoints (best.xckpt is kept apart).")]
        [DefaultValue(3)]
        public int KeepCheckpoints { get; init; } = 3;

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

        [CommandOption("--output-dir <DIR>")]
        [Description("Run folder: model.xnet (for 'xnet predict' and 'xnet evaluate'), metrics.csv (per epoch: loss, top-1, top-5, best validation) and training-curves.png.")]
        [DefaultValue("xnet-run")]
        public string OutputDirectory { get; init; } = "xnet-run";

        public override ValidationResult Validate() =>
            Epochs < 1 ? ValidationResult.Error("--epochs must be at least 1")
            : BatchSize < 1 ? ValidationResult.Error("--batch-size must be at least 1")
            : !(LearningRate > 0) ? ValidationResult.Error("--lr must be positive")
            : ValidationFraction is float f && !(f > 0 && f < 1) ? ValidationResult.Error("--validation-fraction must lie in (0, 1)")
            : ParseOptimizer(Optimizer) is null ? ValidationResult.Error($"--optimizer '{Optimizer}' is not known; expected sgd or adam")
            : !(Momentum >= 0 && Momentum < 1) ? ValidationResult.Error("--momentum must lie in [0, 1)")
            : Nesterov && NoNesterov ? ValidationResult.Error("--nesterov and --no-nesterov exclude each other")
            : !(WeightDecay >= 0) ? ValidationResult.Error("--weight-decay must not be negative")
            : !Schedulers.Contains(Scheduler) ? ValidationResult.Error(
                $"--scheduler '{Scheduler}' is not known; expected {string.Join(", ", Schedulers)}")
            : DecayInterval < 1 ? ValidationResult.Error("--decay-interval must be at least 1")
            : !(DecayLevel > 0) ? ValidationResult.Error("--decay-level must be positive (0.5 or 0.1 to decay)")
            : !(MinLearningRate >= 0) ? ValidationResult.Error("--min-lr must not be negative")
            : !(WarmupEpochs >= 0) ? ValidationResult.Error("--warmup-epochs must not be negative")
            : Augment is not null && ParseAugment(Augment) is null ? ValidationResult.Error(
                $"--augment '{Augment}' is not known; expected crop-flip, random-resized-crop or none")
            : CropPadding < 0 ? ValidationResult.Error("--crop-padding must not be negative")
            : ImageSize < 8 ? ValidationResult.Error("--image-size must be at least 8 pixels")
            : CheckpointEvery < 0 ? ValidationResult.Error("--checkpoint-every must not be negative")
            : KeepCheckpoints < 1 ? ValidationResult.Error("--keep-checkpoints must be at least 1")
            : ParseValues(ChannelMean) is { Error: string meanError } ? ValidationResult.Error($"--channel-mean {meanError}")
            : ParseValues(ChannelStd) is { Error: string stdError } ? ValidationResult.Error($"--channel-std {stdError}")
            : KeepBest && ValidationFraction is null ? ValidationResult.Error("--keep-best needs --validation-fraction (a held-out validation set)")
            : ValidationResult.Success();

        internal static readonly string[] Schedulers = { "cosine", "step", "cifar", "imagenet", "constant" };

        internal static OptimizerKind? ParseOptimizer(string name) => name.ToLowerInvariant() switch
        {
            "sgd" => OptimizerKind.Sgd,
            "adam" => OptimizerKind.Adam,
            _ => null,
        };

        internal static AugmentationKind? ParseAugment(string name) => name.ToLowerInvariant() switch
        {
            "crop-flip" => AugmentationKind.PadCropFlip,
            "random-resized-crop" => AugmentationKind.RandomResizedCrop,
            "none" => AugmentationKind.None,
            _ => null,
        };

        internal static (float[]? Values, string? Error) ParseValues(string? text)
        {
            if (text is null)
            {
                return (null, null);
            }

            var parts = text.Split(',', StringSplitOptions.TrimEntries);
            var values = new float[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                {
                    return (null, $"'{text}' is not a comma-separated list of numbers (e.g. 125.3,123.0,113.9)");
                }
            }

            return (values, null);
        }

        internal LearningRateSchedule Schedule() => Scheduler.ToLowerInvariant() switch
        {
            "step" => LearningRateSchedule.Step(DecayInterval, DecayLevel, MinLearningRate),
            "cifar" => LearningRateSchedule.Cifar(MinLearningRate),
            "imagenet" => LearningRateSchedule.ImageNet(MinLearningRate),
            "constant" => LearningRateSchedule.Constant,
            _ => LearningRateSchedule.Cosine(WarmupEpochs, MinLearningRate),
        };
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        IReadOnlyList<EpochMetrics> earlierEpochs = Array.Empty<EpochMetrics>();
        if (settings.Resume is null)
        {
            RunFolder.SaveArguments(settings.OutputDirectory, context.Arguments.Skip(1));
        }
        else
        {
            var checkpoint = TrainingCheckpoint.FindNewestValid(settings.Resume,
                (file, reason) => AnsiConsole.MarkupLineInterpolated($"[yellow]skipping checkpoint[/] {file}: {reason}"));
            if (checkpoint is not null)
            {
                earlierEpochs = checkpoint.History;
                AnsiConsole.MarkupLineInterpolated(
                    $"Resuming from [green]{checkpoint.Path}[/] (epoch {checkpoint.Epoch + 1}, after batch {checkpoint.Batch}).");
            }
        }

        var mlContext = new MLContext(seed: settings.Seed);
        var imageShape = new ImageShape(3, settings.ImageSize, settings.ImageSize);
        var train = DatasetSource.Load(mlContext, settings.Data, "train", imageShape, settings.SkipUnreadable);
        var test = DatasetSource.Load(mlContext, settings.Data, "test", imageShape, settings.SkipUnreadable);
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet train[/]: {settings.Model} on {train.Data.GetRowCount():N0} training and {test.Data.GetRowCount():N0} test images ({train.Format}, {train.Shape}, {train.ClassNames.Count} classes) from [grey]{settings.Data ?? DatasetSource.Embedded}[/]");
        foreach (string skipped in train.SkippedFiles.Concat(test.SkippedFiles))
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]skipped unreadable image[/] {skipped}");
        }

        var (augmentation, padding) = DatasetSource.ReferenceAugmentation(train);
        var options = new XNetTrainer.Options
        {
            Architecture = settings.Model,
            Epoch = settings.Epochs,
            BatchSize = settings.BatchSize,
            LearningRate = settings.LearningRate,
            Optimizer = Settings.ParseOptimizer(settings.Optimizer)!.Value,
            Momentum = settings.Momentum,
            Nesterov = settings.Nesterov || (!settings.NoNesterov && settings.Momentum > 0),
            WeightDecay = settings.WeightDecay,
            LearningRateSchedule = settings.Schedule(),
            Augmentation = settings.Augment is null ? augmentation : Settings.ParseAugment(settings.Augment)!.Value,
            RandomCropPadding = settings.CropPadding ?? padding,
            HorizontalFlip = !settings.NoFlip,
            ChannelMean = Settings.ParseValues(settings.ChannelMean).Values ?? train.Mean?.ToArray(),
            ChannelStd = Settings.ParseValues(settings.ChannelStd).Values ?? train.Std?.ToArray(),
            KeepBestValidationModel = settings.KeepBest,
            Seed = settings.Seed,
            Device = settings.Device,
            ValidationSetFraction = settings.ValidationFraction,
            WorkspacePath = settings.OutputDirectory,
            ResumeFrom = settings.Resume,
            CheckpointEveryBatches = settings.CheckpointEvery,
            CheckpointsToKeep = settings.KeepCheckpoints,
            CancellationToken = cancellationToken,
        };

        // The ML.NET pipeline: every reader already gives a key-typed Label and a Vector<Single, C, H, W> Features column.
        var pipeline = mlContext.MulticlassClassification.Trainers.XNet(options);
        var epochs = new List<EpochMetrics>();
        options.MetricsCallback = epochs.Add;
        XNetTransformer model;
        try
        {
            model = TrainingDisplay.Run(options, () => pipeline.Fit(train.Data));
        }
        catch (OperationCanceledException ex)
        {
            throw new OperationCanceledException($"{ex.Message} Continue with: xnet train --resume {settings.OutputDirectory}", ex);
        }

        using (model)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"Trained {model.Model.Architecture}: {model.Model.ParameterCount:N0} parameters on {model.Model.Device.type}.");
            // A resumed run reports (and plots) the epochs before the checkpoint too; one already complete adds none.
            var all = earlierEpochs.Concat(epochs).ToList();
            var history = new TrainingHistory(all, settings.KeepBest ? new TrainingHistory(all).BestValidationEpoch : null);
            TrainingDisplay.Summary(history);
            string plot = Path.Combine(settings.OutputDirectory, TrainingCurvesPlot.FileName);
            TrainingCurvesPlot.Write(history, plot);
            AnsiConsole.MarkupLineInterpolated(
                $"Run folder [green]{Path.GetFullPath(settings.OutputDirectory)}[/]: model.xnet, metrics.csv, {TrainingCurvesPlot.FileName}");
            var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test.Data), topKPredictionCount: Math.Min(5, test.ClassNames.Count));
            MetricsReport.Write(metrics, model.Model.ClassNames);
        }

        return 0;
    }
}
