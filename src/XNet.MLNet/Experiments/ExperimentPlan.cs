using System.Text.Json;
using System.Text.Json.Serialization;
using XNet.MLNet.Training;

namespace XNet.MLNet.Experiments;

/// <summary>
/// An experiment: the models to compare, the seeds each runs with, the data and one training recipe for all. Read from
/// a small JSON file (docs/results.md has the plans behind its tables):
/// <code>
/// { "name": "equal-density", "data": "/usr/share/datasets/fashion-mnist",
///   "models": ["resnet-20", "x-resnet-20-4", "g-resnet-20-4"], "seeds": [0, 1, 2],
///   "recipe": { "epochs": 15, "batchSize": 128, "learningRate": 0.1 } }
/// </code>
/// </summary>
public sealed record ExperimentPlan
{
    /// <summary>A name for the tables and plots.</summary>
    public string Name { get; init; } = "experiment";

    /// <summary>The dataset folder (CIFAR, idx or image folder), relative to the plan file; null: the caller's default.</summary>
    public string? Data { get; init; }

    /// <summary>Zoo names of the models to compare.</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    /// <summary>The seeds every model runs with (weights, expander graphs, shuffling, augmentation, validation split).</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [0];

    /// <summary>The training recipe, the same for every run.</summary>
    public ExperimentRecipe Recipe { get; init; } = new();

    /// <summary>Use only the first N training images (quick plans); null: all.</summary>
    public int? TrainLimit { get; init; }

    /// <summary>Score only the first N test images (quick plans); null: all.</summary>
    public int? TestLimit { get; init; }

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Reads and checks a plan file; a relative <see cref="Data"/> is resolved against the file's folder.</summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When it is not a valid plan; the message names the file and the field.</exception>
    public static ExperimentPlan Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Experiment plan '{path}' does not exist.", path);
        }

        ExperimentPlan plan;
        try
        {
            plan = JsonSerializer.Deserialize<ExperimentPlan>(File.ReadAllText(path), Json)
                   ?? throw new InvalidDataException("it is empty");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Experiment plan '{path}' is not valid JSON for a plan: {ex.Message}", ex);
        }

        try
        {
            plan.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"Experiment plan '{path}': {ex.Message}", ex);
        }

        return plan.Data is string data && !Path.IsPathRooted(data)
            ? plan with { Data = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, data)) }
            : plan;
    }

    /// <summary>Throws when the plan cannot run, naming the field.</summary>
    /// <exception cref="ArgumentException">When a field is missing or out of range.</exception>
    public void Validate()
    {
        if (Models is null || Models.Count == 0)
        {
            throw new ArgumentException("'models' must name at least one architecture.");
        }

        foreach (string model in Models)
        {
            Architectures.ModelZoo.EnsureKnown(model);
        }

        if (Models.Distinct(StringComparer.OrdinalIgnoreCase).Count() != Models.Count)
        {
            throw new ArgumentException("'models' names a model twice.");
        }

        if (Seeds is null || Seeds.Count == 0 || Seeds.Distinct().Count() != Seeds.Count)
        {
            throw new ArgumentException("'seeds' must list at least one seed, each once.");
        }

        if (TrainLimit is < 1 || TestLimit is < 1)
        {
            throw new ArgumentException("'trainLimit' and 'testLimit' must be at least 1 when given.");
        }

        (Recipe ?? throw new ArgumentException("'recipe' is null.")).ToOptions("resnet-8", 0, ".").ToTrainingOptions(0).Validate();
        if (!(Recipe.ValidationFraction > 0 && Recipe.ValidationFraction < 1))
        {
            throw new ArgumentException($"'recipe.validationFraction' = {Recipe.ValidationFraction} must lie in (0, 1): model selection needs a validation split.");
        }
    }
}

/// <summary>
/// The training recipe of an experiment, the same for every model and seed: the trainer's options that matter for a
/// comparison. Model selection uses <see cref="ValidationFraction"/> of the training images; the test set is scored once,
/// after the last epoch.
/// </summary>
public sealed record ExperimentRecipe
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 15;

    /// <summary>Images per optimiser step.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Base (maximum) learning rate of the cosine schedule.</summary>
    public float LearningRate { get; init; } = 0.1f;

    /// <summary>L2 weight decay.</summary>
    public float WeightDecay { get; init; } = 5e-4f;

    /// <summary>Warm-up epochs of the cosine schedule.</summary>
    public double WarmupEpochs { get; init; } = 1;

    /// <summary>Zero padding of the random crop (0: flips only).</summary>
    public int RandomCropPadding { get; init; } = 2;

    /// <summary>Random horizontal flips.</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Fraction of the training images held out for validation (model selection never sees the test set).</summary>
    public float ValidationFraction { get; init; } = 0.1f;

    /// <summary>The trainer's options for one run.</summary>
    public XNetTrainer.Options ToOptions(string model, int seed, string runFolder) => new()
    {
        Architecture = model,
        Epoch = Epochs,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        WeightDecay = WeightDecay,
        LearningRateSchedule = LearningRateSchedule.Cosine(WarmupEpochs),
        Augmentation = AugmentationKind.PadCropFlip,
        RandomCropPadding = RandomCropPadding,
        HorizontalFlip = HorizontalFlip,
        ValidationSetFraction = ValidationFraction,
        Seed = seed,
        WorkspacePath = runFolder,
    };
}
