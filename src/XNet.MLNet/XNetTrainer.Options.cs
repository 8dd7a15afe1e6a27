using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet.Training;

namespace XNet.MLNet;

public sealed partial class XNetTrainer
{
    /// <summary>
    /// The defaults of <see cref="Options"/> that the catalog overload and command lines repeat: one place to change them.
    /// </summary>
    public static class Defaults
    {
        /// <summary>The network: X-ResNet-20 at compression 4.</summary>
        public const string Architecture = "x-resnet-20-4";

        /// <summary>Passes over the training data.</summary>
        public const int Epoch = 10;

        /// <summary>Images per optimiser step.</summary>
        public const int BatchSize = 128;

        /// <summary>Base learning rate.</summary>
        public const float LearningRate = 0.1f;

        /// <summary>SGD momentum.</summary>
        public const float Momentum = 0.9f;

        /// <summary>L2 weight decay.</summary>
        public const float WeightDecay = 5e-4f;

        /// <summary>Newest checkpoints kept.</summary>
        public const int CheckpointsToKeep = 3;
    }

    /// <summary>Options of <see cref="XNetTrainer"/>, named as ML.NET's ImageClassificationTrainer names them where they overlap.</summary>
    public sealed class Options
    {
        /// <summary>Key-typed label column.</summary>
        [JsonIgnore]
        public string LabelColumnName = "Label";

        /// <summary>Known-size Single vector of C*H*W raw pixels, channels-first.</summary>
        [JsonIgnore]
        public string FeatureColumnName = "Features";

        /// <summary>Output column of class probabilities.</summary>
        [JsonIgnore]
        public string ScoreColumnName = "Score";

        /// <summary>Output column of the predicted class (key type of the label).</summary>
        [JsonIgnore]
        public string PredictedLabelColumnName = "PredictedLabel";

        /// <summary>Zoo name of the network: <c>x-resnet-20-4</c> (expander, compression 4), <c>resnet-20</c>, <c>g-resnet-20-4</c>, ...</summary>
        public string Architecture = Defaults.Architecture;

        /// <summary>
        /// Image channels. For a pixel-vector feature column, set with <see cref="ImageHeight"/> and
        /// <see cref="ImageWidth"/> to give the shape its values have; for a column of images (<c>MLImage</c> or encoded
        /// bytes) each of the three may be set alone and says what the images are brought to (default 3: colour).
        /// </summary>
        public int? ImageChannels;

        /// <summary>Image height in pixels; for a column of images, what they are resized to (default: the architecture family's, 32 or 224).</summary>
        public int? ImageHeight;

        /// <summary>Image width in pixels; for a column of images, what they are resized to (default: the architecture family's, 32 or 224).</summary>
        public int? ImageWidth;

        /// <summary>Passes over the training data.</summary>
        public int Epoch = Defaults.Epoch;

        /// <summary>Images per optimiser step.</summary>
        public int BatchSize = Defaults.BatchSize;

        /// <summary>Base (maximum) learning rate (the paper's reference code's <c>maxlr</c>).</summary>
        public float LearningRate = Defaults.LearningRate;

        /// <summary>The optimiser: SGD (default) or Adam (the paper's reference code's <c>--optimType</c>).</summary>
        public OptimizerKind Optimizer = OptimizerKind.Sgd;

        /// <summary>SGD momentum (ignored by Adam).</summary>
        public float Momentum = Defaults.Momentum;

        /// <summary>Nesterov momentum (ignored by Adam).</summary>
        public bool Nesterov = true;

        /// <summary>L2 weight decay.</summary>
        public float WeightDecay = Defaults.WeightDecay;

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
        [JsonConverter(typeof(RangeJsonConverter))]
        public (double Min, double Max) CropScale = (0.08, 1.0);

        /// <summary>Aspect-ratio range (width / height) of <see cref="AugmentationKind.RandomResizedCrop"/>.</summary>
        [JsonConverter(typeof(RangeJsonConverter))]
        public (double Min, double Max) CropRatio = (3.0 / 4.0, 4.0 / 3.0);

        /// <summary>
        /// torchvision's RandomErasing, drawn per training image with this probability (0, the default, turns it off; 0.25-0.5
        /// is usual): a box of 2-33 % of the image with an aspect ratio from 0.3 to 3.3 is set to the channel mean (0 after the
        /// network's normalisation, as torchvision's <c>value=0</c> after <c>Normalize</c>), after the crop and flip.
        /// </summary>
        public float RandomErasing;

        /// <summary>
        /// Label smoothing of the training loss (PyTorch's <c>CrossEntropyLoss(label_smoothing)</c>): the target puts this
        /// much probability evenly over all classes. 0 (the default) turns it off; 0.1 is usual. Validation and test losses are
        /// plain cross-entropy.
        /// </summary>
        public float LabelSmoothing;

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
        [JsonIgnore]
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
        [JsonIgnore]
        public Action<EpochMetrics>? MetricsCallback;

        /// <summary>Called after every batch (for progress displays).</summary>
        [JsonIgnore]
        public Action<BatchProgress>? ProgressCallback;

        /// <summary>Seed of weights, expander graphs, shuffling and augmentation; null derives one from the MLContext's seed.</summary>
        public int? Seed;

        /// <summary>
        /// When set, the run folder (<see cref="RunFolder"/>): the trained model (<c>model.xnet</c>), per-epoch metrics
        /// (<c>metrics.csv</c>) and checkpoints (<c>checkpoints/</c>: at every epoch end, every <see cref="CheckpointEveryBatches"/>
        /// batches and on cancellation) are written here, each file atomically. An earlier run's files in it are removed
        /// first; a run resumed with <see cref="ResumeFrom"/> continues in the checkpoint's run folder unless this is set.
        /// </summary>
        [JsonIgnore]
        public string? WorkspacePath;

        /// <summary>Also checkpoint every this many batches within an epoch (0: at epoch ends and on cancellation only). Needs <see cref="WorkspacePath"/>.</summary>
        public int CheckpointEveryBatches;

        /// <summary>How many of the newest checkpoints to keep in <c>checkpoints/</c> (the best validation one is kept apart).</summary>
        public int CheckpointsToKeep = Defaults.CheckpointsToKeep;

        /// <summary>
        /// Continue a checkpointed run: a run folder, its <c>checkpoints</c> folder or a checkpoint file. The newest valid
        /// checkpoint is used with the training settings it records (architecture, schedule, augmentation, normalisation,
        /// seed, ...), so <c>new Options { ResumeFrom = folder }</c> needs nothing else; with the same data the result equals
        /// an uninterrupted run's (bit for bit on the CPU). A training setting given a value other than the recorded one, or
        /// data of another image shape or class list, is refused.
        /// </summary>
        [JsonIgnore]
        public string? ResumeFrom;

        /// <summary>
        /// Continue training from a saved model's weights: an <c>.xnet</c> file or an ML.NET zip written by
        /// <c>mlContext.Model.Save</c> from a pipeline with an X-Net (told apart by content). Its architecture, image shape and
        /// classes must equal this run's; its normalisation and expander graphs are kept. The optimiser and schedule start
        /// afresh (use <see cref="ResumeFrom"/> to continue an interrupted run exactly). Cannot be combined with <see cref="ResumeFrom"/>.
        /// </summary>
        [JsonIgnore]
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
        [JsonIgnore]
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
                    $"Set all of ImageChannels, ImageHeight and ImageWidth or none (got {Given(ImageChannels)}, {Given(ImageHeight)}, {Given(ImageWidth)}).");
            }

            return new ImageShape(c, h, w);
        }

        private static string Given(int? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "unset";

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

        /// <summary>
        /// Free-form notes recorded with the run in its checkpoints (the <c>xnet</c> command line records where its data came
        /// from); they do not affect training and come back in <see cref="TrainingCheckpoint.Options"/>.
        /// </summary>
        public Dictionary<string, string>? Tags;

        /// <summary>Throws when an option is out of range, naming it (the <see cref="ArgumentException.ParamName"/> is the option's name).</summary>
        /// <exception cref="ArgumentOutOfRangeException">When an option is invalid.</exception>
        public void Validate()
        {
            Check(!string.IsNullOrWhiteSpace(Architecture), nameof(Architecture), Architecture, "a zoo name such as x-resnet-20-4");
            ModelZoo.EnsureKnown(Architecture!, nameof(Architecture));

            Check(ImageChannels is null or (>= 1 and <= ImageShape.MaxChannels), nameof(ImageChannels), ImageChannels ?? 0,
                $"from 1 to {ImageShape.MaxChannels}, or null");
            Check(ImageHeight is null or (>= 1 and <= ImageShape.MaxSide), nameof(ImageHeight), ImageHeight ?? 0, $"from 1 to {ImageShape.MaxSide}, or null");
            Check(ImageWidth is null or (>= 1 and <= ImageShape.MaxSide), nameof(ImageWidth), ImageWidth ?? 0, $"from 1 to {ImageShape.MaxSide}, or null");
            Check(Epoch >= 1, nameof(Epoch), Epoch, "at least 1");
            Check(BatchSize is >= 1 and <= 65_536, nameof(BatchSize), BatchSize, "from 1 to 65,536");
            Check(LearningRate > 0 && float.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a positive number");
            Check(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, "Sgd or Adam");
            Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "in [0, 1)");
            Check(Optimizer != OptimizerKind.Sgd || !Nesterov || Momentum > 0, nameof(Nesterov), Nesterov, "false when Momentum is 0");
            Check(WeightDecay >= 0 && float.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "a finite number, not negative");
            Check(LearningRateSchedule is not null, nameof(LearningRateSchedule), "null", "a LearningRateSchedule");
            LearningRateSchedule!.Validate();
            Check(Enum.IsDefined(Augmentation), nameof(Augmentation), Augmentation, "PadCropFlip, RandomResizedCrop or None");
            Check(RandomCropPadding is >= 0 and <= 1_024, nameof(RandomCropPadding), RandomCropPadding, "from 0 to 1,024");
            Check(CropScale.Min > 0 && CropScale.Min <= CropScale.Max && CropScale.Max <= 1, nameof(CropScale), CropScale,
                "a range (Min, Max) with 0 < Min <= Max <= 1");
            Check(CropRatio.Min > 0 && CropRatio.Min <= CropRatio.Max && double.IsFinite(CropRatio.Max), nameof(CropRatio), CropRatio,
                "a range (Min, Max) with 0 < Min <= Max");
            Check(RandomErasing is >= 0 and <= 1, nameof(RandomErasing), RandomErasing, "a probability from 0 to 1");
            Check(LabelSmoothing is >= 0 and < 1, nameof(LabelSmoothing), LabelSmoothing, "from 0 up to but excluding 1");
            Check(ValidationSetFraction is null or (> 0 and < 1), nameof(ValidationSetFraction), ValidationSetFraction ?? float.NaN, "in (0, 1) or null");
            Check(CheckpointEveryBatches >= 0, nameof(CheckpointEveryBatches), CheckpointEveryBatches, "not negative");
            Check(CheckpointsToKeep >= 1, nameof(CheckpointsToKeep), CheckpointsToKeep, "at least 1");
            Check(InferenceBatchSize is >= 1 and <= 65_536, nameof(InferenceBatchSize), InferenceBatchSize, "from 1 to 65,536");
            Check(Device is null || System.Text.RegularExpressions.Regex.IsMatch(Device.Trim(), @"^(auto|cpu|cuda(:\d{1,3})?)$",
                System.Text.RegularExpressions.RegexOptions.IgnoreCase), nameof(Device), Device ?? "", "auto, cpu, cuda or cuda:N");
            EarlyStoppingCriteria?.Validate();
        }

        private static void Check(bool ok, string option, object value, string expected)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException(option, value, $"Option {option} = {value} must be {expected}.");
            }
        }

        /// <summary>Whether the best validation epoch's weights are restored at the end (kept, or early stopping).</summary>
        internal bool RestoresBestEpoch => KeepBestValidationModel || EarlyStoppingCriteria is not null;

        /// <summary>The metric that picks the best epoch: early stopping's, else validation accuracy.</summary>
        internal EarlyStoppingMetric SelectionMetric => EarlyStoppingCriteria?.Metric ?? EarlyStoppingMetric.Accuracy;

        /// <summary>A copy (the arrays and tags too) with <see cref="Seed"/> set: the options a run actually trains with.</summary>
        internal Options WithSeed(int seed)
        {
            var copy = (Options)MemberwiseClone();
            copy.ChannelMean = (float[]?)ChannelMean?.Clone();
            copy.ChannelStd = (float[]?)ChannelStd?.Clone();
            copy.Tags = Tags is null ? null : new Dictionary<string, string>(Tags);
            copy.Seed = seed;
            return copy;
        }

        /// <summary>
        /// The JSON form of the training settings (everything but columns, data, callbacks, run-folder and device
        /// settings), as checkpoints record them and experiment plans give their recipe.
        /// </summary>
        internal static JsonSerializerOptions Json { get; } = new()
        {
            IncludeFields = true,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        };

        /// <summary>Recorded settings that do not change what is trained, so a resumed run may change them.</summary>
        private static readonly string[] RunTimeSettings =
            [nameof(Device), nameof(FallbackToCpu), nameof(CheckpointEveryBatches), nameof(CheckpointsToKeep), nameof(InferenceBatchSize), nameof(Tags)];

        /// <summary>
        /// These options, continuing the run that recorded <paramref name="recorded"/>: every recorded setting left at its
        /// default takes the recorded value, so <c>new Options { ResumeFrom = dir }</c> needs nothing else. The device,
        /// checkpoint cadence and scoring batch size may be given anew; a training setting given another value is refused,
        /// since the run would no longer be the one that was started. Columns, data and callbacks are never recorded.
        /// </summary>
        /// <exception cref="ArgumentException">When a training setting was given a value other than the recorded one.</exception>
        internal Options ContinuingFrom(Options recorded, string checkpointPath)
        {
            var defaults = new Options();
            var resumed = WithSeed(recorded.Seed ?? 0);
            foreach (var field in typeof(Options).GetFields().Where(f => !f.IsDefined(typeof(JsonIgnoreAttribute), false)))
            {
                string given = JsonSerializer.Serialize(field.GetValue(this), field.FieldType, Json);
                string kept = JsonSerializer.Serialize(field.GetValue(recorded), field.FieldType, Json);
                bool isDefault = given == JsonSerializer.Serialize(field.GetValue(defaults), field.FieldType, Json);
                if (!isDefault && RunTimeSettings.Contains(field.Name))
                {
                    continue;
                }

                if (given != kept && !isDefault)
                {
                    throw new ArgumentException(
                        $"Option {field.Name} = {given} differs from the run being resumed ({kept}, recorded in '{checkpointPath}'): a resumed " +
                        $"run continues with the settings it was started with. Leave {field.Name} unset, or start a new run (InitialModel " +
                        "continues from a saved model's weights with new settings).", field.Name);
                }

                field.SetValue(resumed, field.GetValue(recorded));
            }

            return resumed;
        }

        /// <summary>A (Min, Max) range as a JSON array of two numbers, <c>[0.08, 1]</c>.</summary>
        private sealed class RangeJsonConverter : JsonConverter<(double Min, double Max)>
        {
            public override (double Min, double Max) Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
            {
                var values = JsonSerializer.Deserialize<double[]>(ref reader, options);
                return values is { Length: 2 } ? (values[0], values[1]) : throw new JsonException("a range is an array of two numbers, [min, max]");
            }

            public override void Write(Utf8JsonWriter writer, (double Min, double Max) value, JsonSerializerOptions options) =>
                JsonSerializer.Serialize(writer, new[] { value.Min, value.Max }, options);
        }
    }
}
