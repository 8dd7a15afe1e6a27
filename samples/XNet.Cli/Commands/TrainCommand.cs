using System.ComponentModel;
using System.Diagnostics;
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
        [Description("Dataset folder: CIFAR-10 (cifar-10-batches-bin) or CIFAR-100 (cifar-100-binary) binary files, idx files (train-/t10k-images-idx3-ubyte, optionally gzipped: MNIST or Fashion-MNIST), or an image folder (root/train and root/val, valid, validation or test with one subfolder per class, or root/<class>). Default: the embedded Fashion-MNIST subset (8,000 train, 2,000 test).")]
        public string? Data { get; init; }

        [CommandOption("--image-size <PIXELS>")]
        [Description("Image folders only: the square size images are read at (the whole image, stretched), the paper's reference code's --inpsize. Default: the photos' median shorter side rounded down to a multiple of 32, from 64 to 224 (32 for smaller images).")]
        public int? ImageSize { get; init; }

        [CommandOption("--skip-unreadable")]
        [Description("Image folders only: skip (and list) files that cannot be decoded instead of stopping.")]
        public bool SkipUnreadable { get; init; }

        [CommandOption("--cache-dir <DIR>")]
        [Description(DatasetSource.CacheDirectoryHelp)]
        public string? CacheDirectory { get; init; }

        [CommandOption("--model <NAME>")]
        [Description("Architecture from the zoo ('xnet models' lists them).")]
        [DefaultValue(XNetTrainer.Defaults.Architecture)]
        public string Model { get; init; } = XNetTrainer.Defaults.Architecture;

        [CommandOption("--epochs <N>")]
        [Description("Passes over the training data (8 here, a one-minute demo on the embedded subset; the library's default is 10).")]
        [DefaultValue(8)]
        public int Epochs { get; init; } = 8;

        [CommandOption("--batch-size <N>")]
        [Description("Images per optimiser step.")]
        [DefaultValue(XNetTrainer.Defaults.BatchSize)]
        public int BatchSize { get; init; } = XNetTrainer.Defaults.BatchSize;

        [CommandOption("--lr <RATE>")]
        [Description("Base (maximum) learning rate, the paper's reference code's maxlr.")]
        [DefaultValue(XNetTrainer.Defaults.LearningRate)]
        public float LearningRate { get; init; } = XNetTrainer.Defaults.LearningRate;

        [CommandOption("--optimizer <NAME>")]
        [Description("sgd (momentum, Nesterov, weight decay) or adam (weight decay; momentum options ignored).")]
        [DefaultValue("sgd")]
        public string Optimizer { get; init; } = "sgd";

        [CommandOption("--momentum <M>")]
        [Description("SGD momentum, from 0 up to but excluding 1.")]
        [DefaultValue(XNetTrainer.Defaults.Momentum)]
        public float Momentum { get; init; } = XNetTrainer.Defaults.Momentum;

        [CommandOption("--nesterov")]
        [Description("Nesterov momentum for SGD (the default).")]
        public bool Nesterov { get; init; }

        [CommandOption("--no-nesterov")]
        [Description("Plain momentum for SGD.")]
        public bool NoNesterov { get; init; }

        [CommandOption("--weight-decay <WD>")]
        [Description("L2 weight decay.")]
        [DefaultValue(XNetTrainer.Defaults.WeightDecay)]
        public float WeightDecay { get; init; } = XNetTrainer.Defaults.WeightDecay;

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

        [CommandOption("--random-erasing <P>")]
        [Description("Probability of torchvision's RandomErasing per training image (a box of 2-33 % of the image set to the channel mean, after the crop and flip); 0 turns it off.")]
        [DefaultValue(0f)]
        public float RandomErasing { get; init; }

        [CommandOption("--label-smoothing <S>")]
        [Description("Label smoothing of the training loss (0.1 is usual); 0 turns it off.")]
        [DefaultValue(0f)]
        public float LabelSmoothing { get; init; }

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
        [Description("Continue the run in this run folder from its newest valid checkpoint, with the data and options it was started with (recorded in the checkpoint; a training option given now must agree with them). Bit-identical to an uninterrupted run on the CPU.")]
        public string? Resume { get; init; }

        [CommandOption("--checkpoint-every <BATCHES>")]
        [Description("Also checkpoint every this many batches (checkpoints are always written at epoch ends and on Ctrl+C).")]
        [DefaultValue(0)]
        public int CheckpointEvery { get; init; }

        [CommandOption("--keep-checkpoints <N>")]
        [Description("How many of the newest checkpoints to keep in <output-dir>/checkpoints (best.xckpt is kept apart).")]
        [DefaultValue(XNetTrainer.Defaults.CheckpointsToKeep)]
        public int KeepCheckpoints { get; init; } = XNetTrainer.Defaults.CheckpointsToKeep;

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
        [Description("Run folder: model.xnet (for 'xnet predict' and 'xnet evaluate'), metrics.csv (per epoch: loss, top-1, top-5, best validation), checkpoints/ and training-curves.png. An earlier run's files there are replaced.")]
        [DefaultValue("xnet-run")]
        public string OutputDirectory { get; init; } = "xnet-run";

        /// <summary>What the command line itself can check: names, lists and flags that exclude each other. Ranges are the library's.</summary>
        public override ValidationResult Validate() =>
            ParseOptimizer(Optimizer) is null ? ValidationResult.Error($"--optimizer '{Optimizer}' is not known; expected sgd or adam")
            : Nesterov && NoNesterov ? ValidationResult.Error("--nesterov and --no-nesterov exclude each other")
            : !Schedulers.Contains(Scheduler) ? ValidationResult.Error(
                $"--scheduler '{Scheduler}' is not known; expected {string.Join(", ", Schedulers)}")
            : Augment is not null && ParseAugment(Augment) is null ? ValidationResult.Error(
                $"--augment '{Augment}' is not known; expected crop-flip, random-resized-crop or none")
            : ImageSize is < 8 or > ImageShape.MaxSide ? ValidationResult.Error($"--image-size {ImageSize} must be from 8 to {ImageShape.MaxSide} pixels")
            : ParseValues(ChannelMean) is { Error: string meanError } ? ValidationResult.Error($"--channel-mean {meanError}")
            : ParseValues(ChannelStd) is { Error: string stdError } ? ValidationResult.Error($"--channel-std {stdError}")
            : DatasetSource.CacheDirectoryError(CacheDirectory) is string cacheError ? ValidationResult.Error(cacheError)
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

    /// <summary>
    /// Each training flag and the trainer option it sets: a new run applies them all, a resumed one only those given on its
    /// command line (the rest come from the checkpoint), and the trainer's errors about an option name its flag.
    /// </summary>
    private static readonly (string[] Flags, string Option, Action<Settings, XNetTrainer.Options> Apply)[] Flags =
    {
        (["--model"], nameof(XNetTrainer.Options.Architecture), (s, o) => o.Architecture = s.Model),
        (["--epochs"], nameof(XNetTrainer.Options.Epoch), (s, o) => o.Epoch = s.Epochs),
        (["--batch-size"], nameof(XNetTrainer.Options.BatchSize), (s, o) => o.BatchSize = s.BatchSize),
        (["--lr"], nameof(XNetTrainer.Options.LearningRate), (s, o) => o.LearningRate = s.LearningRate),
        (["--optimizer"], nameof(XNetTrainer.Options.Optimizer), (s, o) => o.Optimizer = Settings.ParseOptimizer(s.Optimizer)!.Value),
        (["--momentum"], nameof(XNetTrainer.Options.Momentum), (s, o) => o.Momentum = s.Momentum),
        (["--nesterov", "--no-nesterov", "--momentum"], nameof(XNetTrainer.Options.Nesterov),
            (s, o) => o.Nesterov = s.Nesterov || (!s.NoNesterov && s.Momentum > 0)),
        (["--weight-decay"], nameof(XNetTrainer.Options.WeightDecay), (s, o) => o.WeightDecay = s.WeightDecay),
        (["--scheduler", "--decay-interval", "--decay-level", "--min-lr", "--warmup-epochs"],
            nameof(XNetTrainer.Options.LearningRateSchedule), (s, o) => o.LearningRateSchedule = s.Schedule()),
        (["--augment"], nameof(XNetTrainer.Options.Augmentation), (s, o) => o.Augmentation = Settings.ParseAugment(s.Augment!)!.Value),
        (["--crop-padding"], nameof(XNetTrainer.Options.RandomCropPadding), (s, o) => o.RandomCropPadding = s.CropPadding!.Value),
        (["--no-flip"], nameof(XNetTrainer.Options.HorizontalFlip), (s, o) => o.HorizontalFlip = !s.NoFlip),
        (["--random-erasing"], nameof(XNetTrainer.Options.RandomErasing), (s, o) => o.RandomErasing = s.RandomErasing),
        (["--label-smoothing"], nameof(XNetTrainer.Options.LabelSmoothing), (s, o) => o.LabelSmoothing = s.LabelSmoothing),
        (["--channel-mean"], nameof(XNetTrainer.Options.ChannelMean), (s, o) => o.ChannelMean = Settings.ParseValues(s.ChannelMean).Values),
        (["--channel-std"], nameof(XNetTrainer.Options.ChannelStd), (s, o) => o.ChannelStd = Settings.ParseValues(s.ChannelStd).Values),
        (["--keep-best"], nameof(XNetTrainer.Options.KeepBestValidationModel), (s, o) => o.KeepBestValidationModel = s.KeepBest),
        (["--seed"], nameof(XNetTrainer.Options.Seed), (s, o) => o.Seed = s.Seed),
        (["--validation-fraction"], nameof(XNetTrainer.Options.ValidationSetFraction), (s, o) => o.ValidationSetFraction = s.ValidationFraction),
        (["--device"], nameof(XNetTrainer.Options.Device), (s, o) => o.Device = s.Device),
        (["--checkpoint-every"], nameof(XNetTrainer.Options.CheckpointEveryBatches), (s, o) => o.CheckpointEveryBatches = s.CheckpointEvery),
        (["--keep-checkpoints"], nameof(XNetTrainer.Options.CheckpointsToKeep), (s, o) => o.CheckpointsToKeep = s.KeepCheckpoints),
    };

    /// <summary>Flags whose default depends on the data (the paper's reference code's choices for it), applied once it is read.</summary>
    private static readonly string[] DataDefaults = ["--augment", "--crop-padding", "--channel-mean", "--channel-std"];

    /// <summary>The data a run reads: the command line's business, not the trainer's, so it travels in the checkpoint as tags.</summary>
    private static readonly string[] DataFlags = ["--data", "--image-size", "--skip-unreadable"];

    private const string DataTag = "data";
    private const string ImageSizeTag = "imageSize";
    private const string SkipUnreadableTag = "skipUnreadable";

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        bool Given(string flag) => context.Arguments.Any(a => a == flag || a.StartsWith(flag + "=", StringComparison.Ordinal));
        var recorded = settings.Resume is string resume ? Recorded(resume) : null;
        var options = recorded?.Options ?? new XNetTrainer.Options();
        foreach (var (flags, _, apply) in Flags.Where(f => recorded is null ? !DataDefaults.Contains(f.Flags[0]) : f.Flags.Any(Given)))
        {
            apply(settings, options);
        }

        if (recorded is not null && DataFlags.FirstOrDefault(Given) is string dataFlag)
        {
            throw new UsageException($"{dataFlag}: a resumed run reads the data it started with (recorded in its checkpoint); leave {dataFlag} out.");
        }

        var tags = recorded is not null ? recorded.Options.Tags ?? [] : new Dictionary<string, string>
        {
            [SkipUnreadableTag] = settings.SkipUnreadable.ToString(),
        };
        if (recorded is null && settings.Data is string given)
        {
            tags[DataTag] = Path.GetFullPath(given);
        }

        string? data = tags.GetValueOrDefault(DataTag);
        if (recorded is null)
        {
            tags[ImageSizeTag] = PhotoInput(data, settings.ImageSize, Given("--model") ? null : options).ToString(CultureInfo.InvariantCulture);
        }

        if (!int.TryParse(tags.GetValueOrDefault(ImageSizeTag), CultureInfo.InvariantCulture, out int imageSize)
            || !bool.TryParse(tags.GetValueOrDefault(SkipUnreadableTag), out bool skipUnreadable))
        {
            throw new InvalidDataException(
                $"Checkpoint '{recorded!.Path}' does not record the data of an 'xnet train' run (tags '{ImageSizeTag}' and '{SkipUnreadableTag}'); " +
                "continue it from code, with Options.ResumeFrom and its data.");
        }

        // The run folder of the checkpoint resumed (--resume may name the folder, its checkpoints folder or a checkpoint file).
        string run = recorded is null ? settings.OutputDirectory : RunFolder.Containing(recorded);
        options.Tags = tags;
        options.WorkspacePath = run;
        options.ResumeFrom = settings.Resume;
        options.CancellationToken = cancellationToken;
        OptionErrorsNameTheirFlag(() => { options.Validate(); return options; });
        if (options.KeepBestValidationModel && options.ValidationSetFraction is null)
        {
            throw new UsageException("--keep-best needs --validation-fraction: the best epoch is chosen on images held out of training.");
        }

        var mlContext = new MLContext(seed: settings.Seed);
        var train = DatasetSource.Load(mlContext, data, "train", new ImageShape(3, imageSize, imageSize), skipUnreadable, settings.CacheDirectory);
        var test = DatasetSource.Load(mlContext, data, "test", train.Shape, skipUnreadable, settings.CacheDirectory);
        if (!test.ClassNames.SequenceEqual(train.ClassNames))
        {
            throw new InvalidDataException(
                $"The test split '{test.Folder}' has {test.ClassNames.Count} classes ({string.Join(", ", test.ClassNames.Take(5))}, ...); the training " +
                $"split '{train.Folder}' has {train.ClassNames.Count} ({string.Join(", ", train.ClassNames.Take(5))}, ...). Give both splits the same classes.");
        }
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet train[/]: {options.Architecture} on {train.Data.GetRowCount():N0} training and {test.Data.GetRowCount():N0} test images ({train.Format}, {train.Shape}, {train.ClassNames.Count} classes) from [grey]{data ?? DatasetSource.Embedded}[/]");
        if (!DatasetSource.IsImageFolder(data) && DataFlags.Skip(1).Where(Given).ToList() is { Count: > 0 } folderOnly)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"[yellow]note:[/] {string.Join(" and ", folderOnly)} {(folderOnly.Count == 1 ? "applies" : "apply")} to image folders only; this data is read as it is ({train.Shape}).");
        }

        // A folder split into training and test images lists its skipped files in both.
        foreach (string skipped in train.SkippedFiles.Concat(test.SkippedFiles).Distinct())
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]skipped unreadable image[/] {skipped}");
        }

        if (recorded is null)
        {
            // The defaults of the paper's reference code for this kind of data, where no flag says otherwise.
            options.Augmentation = settings.Augment is null ? train.Augmentation : Settings.ParseAugment(settings.Augment)!.Value;
            options.RandomCropPadding = settings.CropPadding ?? train.RandomCropPadding;
            options.ChannelMean = Settings.ParseValues(settings.ChannelMean).Values ?? train.Mean?.ToArray();
            options.ChannelStd = Settings.ParseValues(settings.ChannelStd).Values ?? train.Std?.ToArray();
        }

        // The ML.NET pipeline: every reader already gives a key-typed Label and a Vector<Single, C, H, W> Features column.
        var pipeline = OptionErrorsNameTheirFlag(() => mlContext.MulticlassClassification.Trainers.XNet(options));
        XNetTransformer model;
        try
        {
            model = OptionErrorsNameTheirFlag(() => TrainingDisplay.Run(options, () => pipeline.Fit(train.Data)));
        }
        catch (OperationCanceledException ex) when (Directory.Exists(RunFolder.CheckpointsOf(run)) &&
                                                   Directory.EnumerateFiles(RunFolder.CheckpointsOf(run)).Any())
        {
            throw new OperationCanceledException($"{ex.Message} Continue with: xnet train --resume {run}", ex);
        }

        using (model)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"Trained {model.Model.Architecture}: {model.Model.ParameterCount:N0} parameters on {model.Model.Device.type}.");
            var history = model.TrainingHistory!;
            TrainingDisplay.Summary(history);
            TrainingCurvesPlot.Write(history, Path.Combine(run, RunFolder.CurvesFileName));
            AnsiConsole.MarkupLineInterpolated(
                $"Run folder [green]{Path.GetFullPath(run)}[/]: {RunFolder.ModelFileName}, {RunFolder.MetricsFileName}, {RunFolder.CurvesFileName}");
            var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test.Data), topKPredictionCount: Math.Min(5, test.ClassNames.Count));
            MetricsReport.Write(metrics, model.Model.ClassNames);
        }

        AnsiConsole.MarkupLineInterpolated($"Peak memory: {Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024):F2} GiB resident.");
        return 0;
    }

    /// <summary>
    /// The side image folders are read at: <paramref name="imageSize"/>, or for an image folder what suits its photos
    /// (<see cref="PhotoDefaults"/>); then the model for that size when <paramref name="chooseModel"/> is given (no --model).
    /// </summary>
    private static int PhotoInput(string? data, int? imageSize, XNetTrainer.Options? chooseModel)
    {
        if (!DatasetSource.IsImageFolder(data))
        {
            return imageSize ?? 224;
        }

        var (side, height, width) = imageSize is int given ? (given, 0, 0) : PhotoDefaults.InputSide(data!);
        if (chooseModel is not null)
        {
            chooseModel.Architecture = PhotoDefaults.Model(side);
        }

        string photos = imageSize is null ? $"photos of about {width}x{height} pixels (median): " : "";
        var chosen = new List<string>();
        if (imageSize is null)
        {
            chosen.Add("--image-size");
        }

        if (chooseModel is not null)
        {
            chosen.Add("--model");
        }

        string hint = chosen.Count == 0 ? "" : $" (set {string.Join(" and ", chosen)} to choose)";
        AnsiConsole.MarkupLineInterpolated(
            $"[grey]{photos}reading them at {side}x{side}{(chooseModel is null ? "" : $" for {chooseModel.Architecture}")}{hint}[/]");
        return side;
    }

    /// <summary>The newest valid checkpoint of the run folder to resume, saying which it is.</summary>
    private static TrainingCheckpoint Recorded(string folder)
    {
        if (File.Exists(RunFolder.CheckpointsOf(folder)))
        {
            throw new IOException($"--resume {folder}: '{RunFolder.CheckpointsOf(folder)}' is a file, not the run's checkpoints folder.");
        }

        var rejected = new List<string>();
        var checkpoint = TrainingCheckpoint.FindNewestValid(folder, (file, reason) =>
        {
            rejected.Add(reason);
            AnsiConsole.MarkupLineInterpolated($"[yellow]skipping checkpoint[/] {file}: {reason}");
        });
        if (checkpoint is null)
        {
            // Nothing there is a wrong flag; only damaged checkpoints there is damaged input.
            string none = $"--resume {folder}: it holds no valid checkpoint ({RunFolder.CheckpointsFolderName}/checkpoint-*.xckpt)";
            throw rejected.Count == 0 ? new UsageException(none + ".") : new InvalidDataException($"{none}: {string.Join("; ", rejected)}");
        }

        AnsiConsole.MarkupLineInterpolated(
            $"Resuming from [green]{checkpoint.Path}[/] (epoch {checkpoint.Epoch + 1}, after batch {checkpoint.Batch}).");
        return checkpoint;
    }

    /// <summary>Runs <paramref name="action"/>; an error about a trainer option becomes a usage error that names its flag.</summary>
    private static T OptionErrorsNameTheirFlag<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (ArgumentException ex) when (FlagOf(ex.ParamName) is string flag)
        {
            string message = ex.Message.Split('\n')[0].Replace($" (Parameter '{ex.ParamName}')", "", StringComparison.Ordinal);
            throw new UsageException($"{flag}: {message}", ex);
        }
    }

    /// <summary>The flag of a trainer option, or of a parameter of the learning-rate schedule.</summary>
    private static string? FlagOf(string? option) => option switch
    {
        nameof(CosineSchedule.WarmupEpochs) => "--warmup-epochs",
        nameof(CosineSchedule.Minimum) => "--min-lr",
        nameof(StepSchedule.Interval) => "--decay-interval",
        nameof(StepSchedule.Multiplier) => "--decay-level",
        _ => Flags.FirstOrDefault(f => f.Option == option).Flags?[0],
    };
}
