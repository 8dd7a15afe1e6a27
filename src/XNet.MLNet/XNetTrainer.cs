using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using XNet.Architectures;
using XNet.MLNet.Data;
using XNet.MLNet.IO;
using XNet.MLNet.Training;
using static TorchSharp.torch;

namespace XNet.MLNet;

/// <summary>
/// Trains a Deep Expander Network (or its dense / grouped twin) on images given as pixel vectors, with TorchSharp on
/// the CPU or a CUDA GPU. Input: a key-typed label column and a known-size Single vector of C*H*W raw pixels (for
/// example from ExtractPixels). Output: an <see cref="XNetTransformer"/> that adds Score and PredictedLabel.
/// </summary>
public sealed class XNetTrainer : IEstimator<XNetTransformer>
{
    private readonly IHost host;
    private readonly IHostEnvironment environment;

    /// <summary>Creates the trainer; logs go to <c>mlContext.Log</c>.</summary>
    public XNetTrainer(MLContext mlContext, Options options)
        : this((IHostEnvironment)mlContext, options)
    {
    }

    internal XNetTrainer(IHostEnvironment environment, Options options)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(options);
        this.environment = environment;
        host = environment.Register(nameof(XNetTrainer));
        TrainerOptions = options;
    }

    /// <summary>The options this trainer was created with.</summary>
    public Options TrainerOptions { get; }

    /// <summary>Trains on <paramref name="input"/>, validating on <see cref="Options.ValidationSet"/> when set.</summary>
    public XNetTransformer Fit(IDataView input) => Fit(input, TrainerOptions.ValidationSet);

    /// <summary>Trains on <paramref name="trainData"/> and reports validation metrics on <paramref name="validationData"/> each epoch.</summary>
    /// <exception cref="ArgumentException">When a column is missing or has the wrong type, or an option is invalid; the message names it.</exception>
    /// <exception cref="InvalidOperationException">When the data has no labelled rows or a non-finite pixel.</exception>
    /// <exception cref="OperationCanceledException">When <see cref="Options.CancellationToken"/> fires or the MLContext is cancelled.</exception>
    public XNetTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var options = TrainerOptions;
        using var cancellationLink = MlContextCancellation.Link(host, options.CancellationToken);
        var cancellation = cancellationLink.Token;
        var shape = DataViewImages.ResolveShape(trainData.Schema, options.FeatureColumnName, options.ExplicitShape());
        int classes = (int)DataViewImages.LabelType(trainData.Schema, options.LabelColumnName).Count;
        var (classNames, labelValueType) = LabelKeyValues.Read(trainData.Schema[options.LabelColumnName]);
        ModelZoo.EnsureKnown(options.Architecture);
        options.CheckNormalization(shape);
        var identity = new ModelIdentity(options.Architecture, shape, classNames);
        using var channel = host.Start("Training");
        if (options.InitialModel is not null && options.ResumeFrom is not null)
        {
            throw new ArgumentException(
                $"Options InitialModel ('{options.InitialModel}') and ResumeFrom ('{options.ResumeFrom}') are both set; a checkpoint already " +
                "holds the weights. Set one of them.", nameof(Options.InitialModel));
        }

        var resume = options.ResumeFrom is string resumePath ? FindCheckpoint(resumePath, identity, channel) : null;
        var trainingOptions = options.ToTrainingOptions(resume?.Seed ?? options.Seed ?? host.Rand.Next());
        trainingOptions.Validate();
        var checkpoints = options.WorkspacePath is string runFolder
            ? new CheckpointSettings(Path.Combine(runFolder, CheckpointStore.FolderName), identity, options.CheckpointEveryBatches,
                options.CheckpointsToKeep)
            : null;
        if (checkpoints is null && options.CheckpointEveryBatches > 0)
        {
            throw new ArgumentException(
                $"Option CheckpointEveryBatches = {options.CheckpointEveryBatches} needs WorkspacePath, the folder checkpoints are written to.",
                nameof(Options.CheckpointEveryBatches));
        }

        checkpoints?.Validate();

        var (gpuDeviceId, contextFallback) = MlContextDevices.Read(environment);
        var choice = TorchDevices.Choose(options.Device, options.FallbackToCpu ?? contextFallback, gpuDeviceId);
        var device = choice.Device;
        if (choice.Fallback is string fallback)
        {
            Log(channel, $"X-Net: {fallback}");
        }

        Log(channel, $"X-Net: training on {choice.Description}.");
        var (train, skipped) = DataViewImages.Read(trainData, options.FeatureColumnName, options.LabelColumnName, shape, classes,
            "training", cancellation);
        Log(channel, $"X-Net: read {train.Count} training images of {shape} in {classes} classes" +
                     (skipped > 0 ? $" ({skipped} rows without a label skipped)." : "."));
        if (Enumerable.Range(0, train.Count).Select(train.Label).Distinct().Take(2).Count() < 2)
        {
            throw new InvalidOperationException(
                $"The training data has images of one class only ('{classNames[train.Label(0)]}') in label column '{options.LabelColumnName}'; " +
                $"a classifier of its {classes} classes needs images of at least two.");
        }

        ImageSet? validation = null;
        if (validationData is not null)
        {
            DataViewImages.ResolveShape(validationData.Schema, options.FeatureColumnName, shape);
            DataViewImages.LabelType(validationData.Schema, options.LabelColumnName);
            var (validationClasses, _) = LabelKeyValues.Read(validationData.Schema[options.LabelColumnName]);
            if (!validationClasses.SequenceEqual(classNames))
            {
                throw new ArgumentException(
                    $"The validation data's classes in label column '{options.LabelColumnName}' ({Describe(validationClasses)}) are not the " +
                    $"training data's ({Describe(classNames)}): key i must mean the same class in both. Transform both with the " +
                    "MapValueToKey fitted on the training data.", nameof(validationData));
            }

            validation = DataViewImages.Read(validationData, options.FeatureColumnName, options.LabelColumnName, shape, classes,
                "validation", cancellation).Images;
        }
        else if ((options.ValidationSetFraction ?? (options.EarlyStoppingCriteria is null ? null : DefaultValidationSetFraction)) is float fraction)
        {
            (train, validation) = train.Split(fraction, trainingOptions.Seed);
            Log(channel, string.Create(CultureInfo.InvariantCulture,
                $"X-Net: holding out {validation.Count} of the training images ({fraction * 100:0.#}%) for validation."));
        }

        manual_seed(trainingOptions.Seed);
        XNetModelParameters model;
        if (options.InitialModel is string initialPath)
        {
            model = LoadInitialModel(initialPath, identity, device);
            Log(channel, $"X-Net: continuing from the weights of '{initialPath}' (its normalisation and expander graphs are kept).");
        }
        else
        {
            var (mean, std) = options.Normalization(train, shape);
            model = XNetModelParameters.Create(options.Architecture, trainingOptions.Seed, shape, classNames, labelValueType, mean, std, device);
        }

        Log(channel, $"X-Net: {options.Architecture}, {model.ParameterCount:N0} parameters, on {device.type}, seed {trainingOptions.Seed}.");
        if (resume is not null)
        {
            Log(channel, $"X-Net: resuming from '{resume.Path}' at epoch {resume.Epoch + 1}, batch {resume.Batch}.");
        }

        TrainingHistory history;
        try
        {
            var engine = new TrainingEngine(model.Network, trainingOptions, device);
            engine.BatchCompleted += progress => options.ProgressCallback?.Invoke(progress);
            engine.BatchCompleted += _ => cancellationLink.Poll();
            engine.EpochCompleted += metrics =>
            {
                Log(channel, Describe(metrics));
                options.MetricsCallback?.Invoke(metrics);
            };
            history = engine.Fit(train, validation, checkpoints, resume, cancellation);
            Log(channel, Summarize(history));
            if (options.WorkspacePath is string workspace)
            {
                WriteWorkspace(workspace, model, history);
                Log(channel, $"X-Net: model and metrics written to '{workspace}'.");
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }

        return new XNetTransformer(model, options.FeatureColumnName, options.ScoreColumnName, options.PredictedLabelColumnName,
            options.InferenceBatchSize)
        {
            TrainingHistory = history,
        };
    }

    /// <summary>The model of <see cref="Options.InitialModel"/>, checked against the network this run trains.</summary>
    private static XNetModelParameters LoadInitialModel(string path, ModelIdentity identity, Device device)
    {
        var model = XNetModelFile.LoadParameters(path, "cpu");
        var found = new ModelIdentity(model.Architecture, model.InputShape, model.ClassNames);
        if (!found.Matches(identity))
        {
            model.Dispose();
            string classes = found.ClassNames.SequenceEqual(identity.ClassNames) ? ""
                : $" (its classes: {string.Join(", ", found.ClassNames.Take(10))}{(found.ClassNames.Count > 10 ? ", ..." : "")}; " +
                  $"this run's: {string.Join(", ", identity.ClassNames.Take(10))}{(identity.ClassNames.Count > 10 ? ", ..." : "")})";
            throw new ArgumentException(
                $"InitialModel '{path}' holds {found}; this run trains {identity}{classes}. Continue with the architecture, image shape and " +
                "classes of that model, or train from scratch.", nameof(Options.InitialModel));
        }

        model.MoveTo(device);
        return model;
    }

    /// <summary>The newest valid checkpoint under <paramref name="path"/>, checked against the network this run trains.</summary>
    private static TrainingCheckpoint FindCheckpoint(string path, ModelIdentity identity, IChannel channel)
    {
        var rejected = new List<string>();
        var checkpoint = TrainingCheckpoint.FindNewestValid(path, (file, reason) =>
        {
            rejected.Add($"{file}: {reason}");
            Log(channel, $"X-Net: skipping checkpoint '{file}': {reason}");
        });
        if (checkpoint is null)
        {
            throw new FileNotFoundException(
                $"ResumeFrom '{path}' holds no valid X-Net checkpoint (checkpoint-*{TrainingCheckpoint.Extension})" +
                (rejected.Count > 0 ? $"; rejected: {string.Join("; ", rejected)}" : "") + ".", path);
        }

        if (!checkpoint.Identity.Matches(identity))
        {
            throw new ArgumentException(
                $"Checkpoint '{checkpoint.Path}' holds {checkpoint.Identity}; this run trains {identity}. " +
                "Resume with the architecture, image shape and classes of the checkpoint, or start a new run.", nameof(Options.ResumeFrom));
        }

        return checkpoint;
    }

    /// <summary>
    /// The input columns plus Score (Vector&lt;Single&gt;) and PredictedLabel (key), after checking the label and feature columns.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var options = TrainerOptions;
        var label = Find(inputSchema, options.LabelColumnName, "Label");

        if (!label.IsKey)
        {
            throw new ArgumentException(
                $"Label column '{options.LabelColumnName}' has type {label.ItemType}; expected a key type. Add " +
                $"mlContext.Transforms.Conversion.MapValueToKey(\"{options.LabelColumnName}\") before the X-Net trainer.", nameof(inputSchema));
        }

        var features = Find(inputSchema, options.FeatureColumnName, "Features");

        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
        {
            throw new ArgumentException(
                $"Features column '{options.FeatureColumnName}' must be a known-size vector of Single pixels.", nameof(inputSchema));
        }

        // As ML.NET's multiclass scorer: the label's values travel in their own type (key values of PredictedLabel,
        // TrainingLabelValues of Score) and become Score's slot names when they are text.
        var text = TextDataViewType.Instance;
        var labelValues = label.Annotations.FirstOrDefault(a => a.Name == "KeyValues") is { Name: not null } keyValues
            ? keyValues.ItemType : text;
        var scoreKinds = new List<SchemaShape.Column>
        {
            NewColumn("TrainingLabelValues", SchemaShape.Column.VectorKind.Vector, labelValues, false, null),
            NewColumn("ScoreColumnKind", SchemaShape.Column.VectorKind.Scalar, text, false, null),
            NewColumn("ScoreValueKind", SchemaShape.Column.VectorKind.Scalar, text, false, null),
        };
        if (labelValues is TextDataViewType)
        {
            scoreKinds.Add(NewColumn("SlotNames", SchemaShape.Column.VectorKind.Vector, text, false, null));
        }

        var scoreAnnotations = new SchemaShape(scoreKinds);
        var labelAnnotations = new SchemaShape(new[]
        {
            NewColumn("KeyValues", SchemaShape.Column.VectorKind.Vector, labelValues, false, null),
            NewColumn("ScoreColumnKind", SchemaShape.Column.VectorKind.Scalar, text, false, null),
            NewColumn("ScoreValueKind", SchemaShape.Column.VectorKind.Scalar, text, false, null),
        });
        return new SchemaShape(inputSchema
            .Where(c => c.Name != options.ScoreColumnName && c.Name != options.PredictedLabelColumnName)
            .Append(NewColumn(options.ScoreColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, scoreAnnotations))
            .Append(NewColumn(options.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, labelAnnotations)));
    }

    private static SchemaShape.Column Find(SchemaShape schema, string name, string role) =>
        schema.LastOrDefault(c => c.Name == name) is { Name: not null } column ? column
            : throw new ArgumentException($"{role} column '{name}' was not found in the input schema.", nameof(schema));

    // SchemaShape.Column's constructor is internal to ML.NET; an estimator that adds columns has no public way to describe them.
    [UnsafeAccessor(UnsafeAccessorKind.Constructor)]
    private static extern SchemaShape.Column NewColumn(string name, SchemaShape.Column.VectorKind vecKind, DataViewType itemType,
        bool isKey, SchemaShape? annotations);

    private static string Describe(IReadOnlyList<string> classes) =>
        $"{classes.Count}: {string.Join(", ", classes.Take(5))}{(classes.Count > 5 ? ", ..." : "")}";

    private static void Log(IChannel channel, string message) => channel.Info(MessageSensitivity.None, "{0}", message);

    private static string Describe(EpochMetrics m)
    {
        string validation = m.ValidationAccuracy is double accuracy
            ? string.Create(CultureInfo.InvariantCulture,
                $", validation loss {m.ValidationLoss:F4} accuracy {accuracy:P2} top-5 {m.ValidationTop5Accuracy:P2}")
            : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"X-Net epoch {m.Epoch}/{m.Epochs}: train loss {m.TrainLoss:F4} accuracy {m.TrainAccuracy:P2} top-5 {m.TrainTop5Accuracy:P2}" +
            $"{validation}, lr {m.LearningRate:G3}, {m.ImagesPerSecond:F0} images/s, elapsed {m.Elapsed:hh\\:mm\\:ss}");
    }

    private static string Summarize(TrainingHistory history)
    {
        var final = history.Final;
        var culture = CultureInfo.InvariantCulture;
        string validation = final.ValidationAccuracy is double v ? string.Create(culture, $", validation accuracy {v:P2}") : "";
        string best = history.BestValidation is { } b
            ? string.Create(culture, $"; best validation accuracy {b.ValidationAccuracy:P2} at epoch {b.Epoch}")
            : "";
        return string.Create(culture,
            $"X-Net: final epoch {final.Epoch} train accuracy {final.TrainAccuracy:P2}{validation}{best}; " +
            $"the model holds the weights of epoch {history.KeptEpoch}.");
    }

    /// <summary>The header of <c>metrics.csv</c>.</summary>
    internal const string MetricsHeader =
        "epoch,train_loss,train_accuracy,train_top5_accuracy,validation_loss,validation_accuracy,validation_top5_accuracy," +
        "best_validation_accuracy,best_validation_epoch,learning_rate,images_per_second,elapsed_seconds";

    /// <summary>
    /// The lines of <c>metrics.csv</c>: the header, then one line per epoch with the best validation accuracy so far and
    /// its epoch (empty without a validation set).
    /// </summary>
    internal static IEnumerable<string> MetricsLines(TrainingHistory history)
    {
        yield return MetricsHeader;
        EpochMetrics? best = null;
        foreach (var m in history)
        {
            if (m.ValidationAccuracy is double accuracy && (best is null || accuracy > best.ValidationAccuracy))
            {
                best = m;
            }

            yield return string.Create(CultureInfo.InvariantCulture,
                $"{m.Epoch},{m.TrainLoss:R},{m.TrainAccuracy:R},{m.TrainTop5Accuracy:R},{Optional(m.ValidationLoss)}," +
                $"{Optional(m.ValidationAccuracy)},{Optional(m.ValidationTop5Accuracy)},{Optional(best?.ValidationAccuracy)}," +
                $"{best?.Epoch.ToString(CultureInfo.InvariantCulture)},{m.LearningRate:R},{m.ImagesPerSecond:R},{m.Elapsed.TotalSeconds:R}");
        }
    }

    private static string Optional(double? value) => value?.ToString("R", CultureInfo.InvariantCulture) ?? "";

    private static void WriteWorkspace(string workspace, XNetModelParameters model, TrainingHistory history)
    {
        Directory.CreateDirectory(workspace);
        model.Save(Path.Combine(workspace, "model.xnet"));
        AtomicFile.WriteAllLines(Path.Combine(workspace, "metrics.csv"), MetricsLines(history));
    }

    /// <summary>The validation fraction held out for early stopping when neither a validation set nor a fraction is given.</summary>
    public const float DefaultValidationSetFraction = 0.1f;

    /// <summary>Options of <see cref="XNetTrainer"/>, named as ML.NET's ImageClassificationTrainer names them where they overlap.</summary>
    public sealed class Options
    {
        /// <summary>Key-typed label column.</summary>
        public string LabelColumnName = "Label";

        /// <summary>Known-size Single vector of C*H*W raw pixels, channels-first.</summary>
        public string FeatureColumnName = "Features";

        /// <summary>Output column of class probabilities.</summary>
        public string ScoreColumnName = "Score";

        /// <summary>Output column of the predicted class (key type of the label).</summary>
        public string PredictedLabelColumnName = "PredictedLabel";

        /// <summary>Zoo name of the network: <c>x-resnet-20-4</c> (expander, compression 4), <c>resnet-20</c>, <c>g-resnet-20-4</c>, ...</summary>
        public string Architecture = "x-resnet-20-4";

        /// <summary>Image channels; with <see cref="ImageHeight"/> and <see cref="ImageWidth"/> overrides the shape read from the feature column.</summary>
        public int? ImageChannels;

        /// <summary>Image height in pixels.</summary>
        public int? ImageHeight;

        /// <summary>Image width in pixels.</summary>
        public int? ImageWidth;

        /// <summary>Passes over the training data.</summary>
        public int Epoch = 10;

        /// <summary>Images per optimiser step.</summary>
        public int BatchSize = 128;

        /// <summary>Base (maximum) learning rate (the paper's reference code's <c>maxlr</c>).</summary>
        public float LearningRate = 0.1f;

        /// <summary>The optimiser: SGD (default) or Adam (the paper's reference code's <c>--optimType</c>).</summary>
        public OptimizerKind Optimizer = OptimizerKind.Sgd;

        /// <summary>SGD momentum (ignored by Adam).</summary>
        public float Momentum = 0.9f;

        /// <summary>Nesterov momentum (ignored by Adam).</summary>
        public bool Nesterov = true;

        /// <summary>L2 weight decay.</summary>
        public float WeightDecay = 5e-4f;

        /// <summary>
        /// Learning-rate schedule: cosine with one warm-up epoch by default; <see cref="LearningRateSchedule.Step"/>,
        /// <see cref="LearningRateSchedule.Cifar"/> and <see cref="LearningRateSchedule.ImageNet"/> are the paper's reference code's.
        /// </summary>
        public LearningRateSchedule LearningRateSchedule = LearningRateSchedule.Cosine();

        /// <summary>How training images are augmented: pad-and-crop with flips (default), RandomResizedCrop with flips, or none.</summary>
        public AugmentationKind Augmentation = AugmentationKind.PadCropFlip;

        /// <summary>Zero padding before the random crop of <see cref="AugmentationKind.PadCropFlip"/> (0 disables cropping; CIFAR: 4).</summary>
        public int RandomCropPadding = 2;

        /// <summary>Whether to flip half of the training images horizontally (with either crop).</summary>
        public bool HorizontalFlip = true;

        /// <summary>Area fraction range of <see cref="AugmentationKind.RandomResizedCrop"/>.</summary>
        public (double Min, double Max) CropScale = (0.08, 1.0);

        /// <summary>Aspect-ratio range (width / height) of <see cref="AugmentationKind.RandomResizedCrop"/>.</summary>
        public (double Min, double Max) CropRatio = (3.0 / 4.0, 4.0 / 3.0);

        /// <summary>
        /// Per-channel mean subtracted from the raw pixels, in the pixels' own units (0-255 for ExtractPixels' defaults),
        /// one value per channel; null computes it from the training images. CIFAR-10's seed constants: 125.3, 123.0, 113.9.
        /// </summary>
        public float[]? ChannelMean;

        /// <summary>
        /// Per-channel standard deviation the pixels are divided by, in the pixels' units, one positive value per channel;
        /// null computes it from the training images. CIFAR-10's seed constants: 63.0, 62.1, 66.7.
        /// </summary>
        public float[]? ChannelStd;

        /// <summary>
        /// After the last epoch, restore the weights of the epoch with the best validation top-1 accuracy (needs a
        /// validation set). Off by default: the final epoch's model is the result.
        /// </summary>
        public bool KeepBestValidationModel;

        /// <summary>Validation data; metrics on it are reported each epoch. Takes precedence over <see cref="ValidationSetFraction"/>.</summary>
        public IDataView? ValidationSet;

        /// <summary>
        /// When no validation set is given, hold out this fraction of the training data for validation (null: none, or
        /// 0.1 when <see cref="EarlyStoppingCriteria"/> is set, as ImageClassificationTrainer does).
        /// </summary>
        public float? ValidationSetFraction;

        /// <summary>
        /// Early stopping on the validation set: stop when <see cref="EarlyStopping.Metric"/> (validation accuracy by
        /// default) has not improved by <see cref="EarlyStopping.MinDelta"/> (0.001) for <see cref="EarlyStopping.Patience"/>
        /// (3) epochs, and restore the best epoch's weights. Null (default) trains every epoch of the schedule: a cosine
        /// schedule is meant to run to its end. <c>new EarlyStopping()</c> turns it on with the defaults.
        /// </summary>
        public EarlyStopping? EarlyStoppingCriteria;

        /// <summary>Called at the end of every epoch.</summary>
        public Action<EpochMetrics>? MetricsCallback;

        /// <summary>Called after every batch (for progress displays).</summary>
        public Action<BatchProgress>? ProgressCallback;

        /// <summary>Seed of weights, expander graphs, shuffling and augmentation; null derives one from the MLContext's seed.</summary>
        public int? Seed;

        /// <summary>
        /// When set, the run folder: the trained model (<c>model.xnet</c>), per-epoch metrics (<c>metrics.csv</c>) and
        /// checkpoints (<c>checkpoints/</c>: at every epoch end, every <see cref="CheckpointEveryBatches"/> batches and on
        /// cancellation) are written here, each file atomically.
        /// </summary>
        public string? WorkspacePath;

        /// <summary>Also checkpoint every this many batches within an epoch (0: at epoch ends and on cancellation only). Needs <see cref="WorkspacePath"/>.</summary>
        public int CheckpointEveryBatches;

        /// <summary>How many of the newest checkpoints to keep in <c>checkpoints/</c> (the best validation one is kept apart).</summary>
        public int CheckpointsToKeep = 3;

        /// <summary>
        /// Continue a checkpointed run: a run folder, its <c>checkpoints</c> folder or a checkpoint file. The newest valid
        /// checkpoint is used, and its seed replaces <see cref="Seed"/>; with the same data and options the result equals
        /// an uninterrupted run's (bit for bit on the CPU). A checkpoint of another architecture, input shape or class list is refused.
        /// </summary>
        public string? ResumeFrom;

        /// <summary>
        /// Continue training from a saved model's weights: an <c>.xnet</c> file or an ML.NET zip written by
        /// <c>mlContext.Model.Save</c> from a pipeline with an X-Net (told apart by content). Its architecture, image shape and
        /// classes must equal this run's; its normalisation and expander graphs are kept. The optimiser and schedule start
        /// afresh (use <see cref="ResumeFrom"/> to continue an interrupted run exactly). Cannot be combined with <see cref="ResumeFrom"/>.
        /// </summary>
        public string? InitialModel;

        /// <summary>
        /// Device: <c>auto</c> or null (<c>MLContext.GpuDeviceId</c> when set, else CUDA when available, else the CPU),
        /// <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.
        /// </summary>
        public string? Device;

        /// <summary>
        /// Train on the CPU (with a logged warning) when a CUDA device was requested but is not available, instead of
        /// throwing; null follows <c>MLContext.FallbackToCpu</c>.
        /// </summary>
        public bool? FallbackToCpu;

        /// <summary>Rows per forward pass when scoring.</summary>
        public int InferenceBatchSize = 256;

        /// <summary>
        /// Stops training (checked every batch, a checkpoint is written when <see cref="WorkspacePath"/> is set). The
        /// MLContext's own cancellation (<c>mlContext.CancelExecution()</c>, as AutoML uses it) stops it the same way.
        /// </summary>
        public CancellationToken CancellationToken;

        internal ImageShape? ExplicitShape()
        {
            if (ImageChannels is null && ImageHeight is null && ImageWidth is null)
            {
                return null;
            }

            if (ImageChannels is not int c || ImageHeight is not int h || ImageWidth is not int w)
            {
                throw new ArgumentException(
                    $"Set all of ImageChannels, ImageHeight and ImageWidth or none (got {ImageChannels}, {ImageHeight}, {ImageWidth}).");
            }

            return new ImageShape(c, h, w);
        }

        /// <summary>The normalisation of the network's input: the given constants, or the statistics of the training images.</summary>
        /// <exception cref="ArgumentException">When a given mean or std has the wrong length or an invalid value.</exception>
        internal (float[] Mean, float[] Std) Normalization(ImageSet train, ImageShape shape)
        {
            CheckNormalization(shape);
            if (ChannelMean is not null && ChannelStd is not null)
            {
                return ((float[])ChannelMean.Clone(), (float[])ChannelStd.Clone());
            }

            var (mean, std) = train.ChannelStatistics();
            return ((float[]?)ChannelMean?.Clone() ?? mean, (float[]?)ChannelStd?.Clone() ?? std);
        }

        /// <summary>Checks <see cref="ChannelMean"/> and <see cref="ChannelStd"/> against the channel count.</summary>
        /// <exception cref="ArgumentException">When a given mean or std has the wrong length or an invalid value.</exception>
        internal void CheckNormalization(ImageShape shape)
        {
            Check(ChannelMean, nameof(ChannelMean), shape, v => float.IsFinite(v), "a finite number");
            Check(ChannelStd, nameof(ChannelStd), shape, v => float.IsFinite(v) && v > 0, "a positive finite number");
        }

        private static void Check(float[]? values, string option, ImageShape shape, Func<float, bool> valid, string expected)
        {
            if (values is null)
            {
                return;
            }

            if (values.Length != shape.Channels)
            {
                throw new ArgumentException(
                    $"Option {option} has {values.Length} value(s) but the images ({shape}) have {shape.Channels} channel(s); " +
                    $"give one value per channel, in pixel units (0-255), or null to compute it from the training data.", option);
            }

            int bad = Array.FindIndex(values, v => !valid(v));
            if (bad >= 0)
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"Option {option}[{bad}] = {values[bad]} must be {expected}."), option);
            }
        }

        internal TrainingOptions ToTrainingOptions(int seed)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(InferenceBatchSize, 1, nameof(InferenceBatchSize));
            return new TrainingOptions
            {
                Epochs = Epoch,
                BatchSize = BatchSize,
                LearningRate = LearningRate,
                Optimizer = Optimizer,
                Momentum = Momentum,
                Nesterov = Nesterov,
                WeightDecay = WeightDecay,
                Schedule = LearningRateSchedule,
                Augmentation = Augmentation,
                RandomCropPadding = RandomCropPadding,
                HorizontalFlip = HorizontalFlip,
                CropScale = CropScale,
                CropRatio = CropRatio,
                KeepBestValidationModel = KeepBestValidationModel,
                EarlyStopping = EarlyStoppingCriteria,
                EvaluationBatchSize = InferenceBatchSize,
                Seed = seed,
            };
        }
    }
}
