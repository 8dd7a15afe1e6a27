using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
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
public sealed partial class XNetTrainer : IEstimator<XNetTransformer>
{
    private readonly IHost host;
    private readonly IHostEnvironment environment;

    /// <summary>Creates the trainer; logs go to <c>mlContext.Log</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When an option is out of range (<see cref="Options.Validate"/>).</exception>
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
        // Checked here as ML.NET's own trainers check their arguments, so a bad option surfaces at the catalog call (and
        // in GetOutputSchema), not only at Fit; Fit checks again, since an Options object can change in between.
        options.Validate();
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
        var given = TrainerOptions;
        using var cancellationLink = MlContextCancellation.Link(host, given.CancellationToken);
        var cancellation = cancellationLink.Token;
        using var channel = host.Start("Training");
        if (given.InitialModel is not null && given.ResumeFrom is not null)
        {
            throw new ArgumentException(
                $"Options InitialModel ('{given.InitialModel}') and ResumeFrom ('{given.ResumeFrom}') are both set; a checkpoint already " +
                "holds the weights. Set one of them.", nameof(Options.InitialModel));
        }

        var resume = given.ResumeFrom is string resumePath ? FindCheckpoint(resumePath, channel) : null;
        var options = resume is null ? given.WithSeed(given.Seed ?? host.Rand.Next()) : given.ContinuingFrom(resume.Options, resume.Path);
        if (resume is not null)
        {
            options.WorkspacePath ??= RunFolder.Containing(resume);
        }

        options.Validate();
        if (options.KeepBestValidationModel && validationData is null && options.ValidationSetFraction is null && options.EarlyStoppingCriteria is null)
        {
            // Checked here, before the run folder is opened: opening it removes an earlier run's files.
            throw new ArgumentException(
                "Option KeepBestValidationModel = true needs a validation set; pass one (ValidationSet, or Fit's validation data), " +
                "set ValidationSetFraction, or set KeepBestValidationModel to false.", nameof(Options.KeepBestValidationModel));
        }

        int seed = options.Seed!.Value;
        // Images, decoded or encoded, become pixels through ML.NET's own transforms, fitted here and kept by the transformer.
        ITransformer? toPixels = null;
        DataViewType? imageType = null;
        string pixelColumn = options.FeatureColumnName;
        ImageShape? givenShape;
        if (trainData.Schema.GetColumnOrNull(options.FeatureColumnName) is { } imageColumn && ImageColumn.Holds(imageColumn.Type))
        {
            imageType = imageColumn.Type;
            givenShape = ImageColumn.InputShape(options.ImageChannels, options.ImageHeight, options.ImageWidth, options.Architecture);
            toPixels = ImageColumn.ToPixels(trainData, options.FeatureColumnName, givenShape);
            trainData = toPixels.Transform(trainData);
            validationData = validationData is null ? null : toPixels.Transform(validationData);
            pixelColumn = ImageColumn.PixelColumn;
        }
        else
        {
            givenShape = options.ExplicitShape();
        }

        var shape = DataViewImages.ResolveShape(trainData.Schema, pixelColumn, givenShape, imagesToo: true);
        int classes = (int)DataViewImages.LabelType(trainData.Schema, options.LabelColumnName).Count;
        var (classNames, labelValueType) = LabelKeyValues.Read(trainData.Schema[options.LabelColumnName]);
        // Before the data is read: a name the zoo parses may still not build for this input (resnet-9, a too small image).
        ModelZoo.EnsureBuildable(options.Architecture, shape, classes, nameof(Options.Architecture));
        options.CheckNormalization(shape);
        var identity = new ModelIdentity(options.Architecture, shape, classNames);
        if (resume is not null && !resume.Identity.Matches(identity))
        {
            throw new ArgumentException(
                $"Checkpoint '{resume.Path}' holds {resume.Identity}; this run trains {identity}. " +
                "Resume with the data (image shape and classes) of the checkpoint's run, or start a new run.", nameof(Options.ResumeFrom));
        }

        if (options.WorkspacePath is null && options.CheckpointEveryBatches > 0)
        {
            throw new ArgumentException(
                $"Option CheckpointEveryBatches = {options.CheckpointEveryBatches} needs WorkspacePath, the folder checkpoints are written to.",
                nameof(Options.CheckpointEveryBatches));
        }

        var (gpuDeviceId, contextFallback) = MlContextDevices.Read(environment);
        var choice = TorchDevices.Choose(options.Device, options.FallbackToCpu ?? contextFallback, gpuDeviceId);
        var device = choice.Device;
        if (choice.Fallback is string fallback)
        {
            Log(channel, $"X-Net: {fallback}");
        }

        Log(channel, $"X-Net: training on {choice.Description}.");
        var (train, skipped) = DataViewImages.Read(trainData, pixelColumn, options.LabelColumnName, shape, classes,
            "training", cancellation, toPixels is null ? null : options.FeatureColumnName);
        using var trainImages = train; // owns the pixels; a held-out split is a view of them
        Log(channel, $"X-Net: read {train.Count} training images of {shape} in {classes} classes" +
                     (skipped > 0 ? $" ({skipped} rows without a label skipped)." : "."));
        if (Enumerable.Range(0, train.Count).Select(train.Label).Distinct().Take(2).Count() < 2)
        {
            throw new InvalidOperationException(
                $"The training data has images of one class only ('{classNames[train.Label(0)]}') in label column '{options.LabelColumnName}'; " +
                $"a classifier of its {classes} classes needs images of at least two.");
        }

        using var validationImages = validationData is null ? null : ReadValidation(validationData, pixelColumn, options, shape, classNames, cancellation);
        var validation = validationImages;
        if (validation is null && (options.ValidationSetFraction ?? (options.EarlyStoppingCriteria is null ? null : 0.1f)) is float fraction)
        {
            (train, validation) = train.Split(fraction, seed);
            Log(channel, string.Create(CultureInfo.InvariantCulture,
                $"X-Net: holding out {validation.Count} of the training images ({fraction * 100:0.#}%) for validation."));
        }

        XNetModelParameters model;
        var normalization = options.InitialModel is null ? options.Normalization(train, shape) : default; // an initial model keeps its own
        // The weights draw from TorchSharp's global generator: seeded and drawn in one piece, so that a run on another thread
        // cannot draw from this run's stream in between (two seeded Fits at once then repeat each other).
        lock (GlobalGenerator.Gate)
        {
            manual_seed(seed);
            model = options.InitialModel is string initialPath
                ? LoadInitialModel(initialPath, identity, device)
                : XNetModelParameters.Create(options.Architecture, seed, shape, classNames, labelValueType, normalization.Mean, normalization.Std,
                    device);
        }

        if (options.InitialModel is string initial)
        {
            Log(channel, $"X-Net: continuing from the weights of '{initial}' (its normalisation and expander graphs are kept).");
        }

        Log(channel, $"X-Net: {options.Architecture}, {model.ParameterCount:N0} parameters, on {device.type}, seed {seed}.");
        if (resume is not null)
        {
            Log(channel, $"X-Net: resuming from '{resume.Path}' at epoch {resume.Epoch + 1}, batch {resume.Batch}.");
        }

        TrainingHistory history;
        try
        {
            using var run = options.WorkspacePath is string workspace
                ? RunFolder.Open(workspace, resuming: resume is not null, message => Log(channel, message))
                : null;
            var checkpoints = run is null ? null : new CheckpointStore(run.CheckpointsPath, identity);
            var engine = new TrainingEngine(model.Network, options, device);
            engine.BatchCompleted += progress => options.ProgressCallback?.Invoke(progress);
            engine.BatchCompleted += _ => cancellationLink.Poll();
            engine.EpochCompleted += metrics =>
            {
                Log(channel, Describe(metrics));
                options.MetricsCallback?.Invoke(metrics);
            };
            history = engine.Fit(train, validation, checkpoints, resume, cancellation);
            Log(channel, Summarize(history));
            if (run is not null)
            {
                run.WriteResult(model, history);
                Log(channel, $"X-Net: model and metrics written to '{run.Path}'.");
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }

        return new XNetTransformer(model, options.FeatureColumnName, options.ScoreColumnName, options.PredictedLabelColumnName,
            options.InferenceBatchSize, toPixels is null ? null : (toPixels, imageType!))
        {
            TrainingHistory = history,
        };
    }

    /// <summary>The validation images, after checking that their shape and classes are the training data's.</summary>
    private static ImageSet ReadValidation(IDataView validationData, string pixelColumn, Options options, ImageShape shape,
        IReadOnlyList<string> classNames, CancellationToken cancellation)
    {
        DataViewImages.ResolveShape(validationData.Schema, pixelColumn, shape, imagesToo: true);
        DataViewImages.LabelType(validationData.Schema, options.LabelColumnName);
        var (validationClasses, _) = LabelKeyValues.Read(validationData.Schema[options.LabelColumnName]);
        if (!validationClasses.SequenceEqual(classNames))
        {
            throw new ArgumentException(
                $"The validation data's classes in label column '{options.LabelColumnName}' ({Describe(validationClasses)}) are not the " +
                $"training data's ({Describe(classNames)}): key i must mean the same class in both. Transform both with the " +
                "MapValueToKey fitted on the training data.", nameof(validationData));
        }

        return DataViewImages.Read(validationData, pixelColumn, options.LabelColumnName, shape, classNames.Count, "validation",
            cancellation, pixelColumn == options.FeatureColumnName ? null : options.FeatureColumnName).Images;
    }

    /// <summary>The model of <see cref="Options.InitialModel"/>, checked against the network this run trains.</summary>
    private static XNetModelParameters LoadInitialModel(string path, ModelIdentity identity, Device device)
    {
        var model = XNetModelFile.Load(path, "cpu");
        var found = new ModelIdentity(model.Architecture, model.InputShape, model.ClassNames);
        if (!found.Matches(identity))
        {
            model.Dispose();
            string classes = found.ClassNames.SequenceEqual(identity.ClassNames) ? ""
                : $" (its classes: {Describe(found.ClassNames)}; this run's: {Describe(identity.ClassNames)})";
            throw new ArgumentException(
                $"InitialModel '{path}' holds {found}; this run trains {identity}{classes}. Continue with the architecture, image shape and " +
                "classes of that model, or train from scratch.", nameof(Options.InitialModel));
        }

        model.MoveTo(device);
        return model;
    }

    /// <summary>The newest valid checkpoint under <paramref name="path"/>, the run to continue.</summary>
    private static TrainingCheckpoint FindCheckpoint(string path, IChannel channel)
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
            throw DataViewImages.LabelNotKey(options.LabelColumnName, TypeText(label));
        }

        var features = Find(inputSchema, options.FeatureColumnName, "Features");

        bool pixels = features.Kind == SchemaShape.Column.VectorKind.Vector && features.ItemType == NumberDataViewType.Single;
        bool images = features.ItemType is ImageDataViewType
                      || features.Kind == SchemaShape.Column.VectorKind.VariableVector && features.ItemType == NumberDataViewType.Byte;
        if (!pixels && !images)
        {
            throw DataViewImages.NotPixels(options.FeatureColumnName, TypeText(features), imagesToo: true);
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
            : throw DataViewImages.MissingColumn(role, name, schema.Select(c => $"'{c.Name}' ({TypeText(c)})"));

    /// <summary>A schema column's type as a DataViewSchema column's prints it (Vector&lt;Single&gt; rather than Single).</summary>
    private static string TypeText(SchemaShape.Column column) =>
        column.Kind == SchemaShape.Column.VectorKind.Scalar ? $"{column.ItemType}" : $"Vector<{column.ItemType}>";

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
}
