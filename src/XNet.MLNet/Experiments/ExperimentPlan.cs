using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using YamlDotNet.Core;

namespace XNet.MLNet.Experiments;

/// <summary>
/// An experiment: the models to compare, the seeds each runs with, the data and one training recipe for all. Read from
/// a small JSON file (docs/results.md has the plans behind its tables), or the same fields in YAML (<c>.yaml</c>,
/// <c>.yml</c>):
/// <code>
/// { "name": "equal-density", "data": "/usr/share/datasets/fashion-mnist",
///   "models": ["resnet-20", "x-resnet-20-4", "g-resnet-20-4"], "seeds": [0, 1, 2],
///   "recipe": { "epoch": 15, "batchSize": 128, "learningRate": 0.1, "validationSetFraction": 0.1 } }
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

    /// <summary>
    /// The training recipe, the same for every run: the trainer's options in their JSON form (<c>epoch</c>, <c>batchSize</c>,
    /// <c>learningRate</c>, <c>learningRateSchedule</c>, <c>randomCropPadding</c>, ...), with a
    /// <see cref="XNetTrainer.Options.ValidationSetFraction"/> for model selection; each run sets its own architecture, seed and
    /// run folder.
    /// </summary>
    public XNetTrainer.Options Recipe { get; init; } = new() { ValidationSetFraction = 0.1f };

    /// <summary>Use only the first N training images (quick plans); null: all.</summary>
    public int? TrainLimit { get; init; }

    /// <summary>Score only the first N test images (quick plans); null: all.</summary>
    public int? TestLimit { get; init; }

    /// <summary>
    /// Reads and checks a plan file, JSON or, by its extension (<c>.yaml</c>, <c>.yml</c>), YAML; a relative
    /// <see cref="Data"/> is resolved against the file's folder.
    /// </summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When it is not a valid plan; the message names the file and the field.</exception>
    public static ExperimentPlan Load(string path)
    {
        if (!File.Exists(path))
        {
            throw IO.MissingPath.File("Experiment plan", path);
        }

        if (new FileInfo(path).Length is 0 or > 1 << 20)
        {
            throw new InvalidDataException($"Experiment plan '{path}' is empty, not a regular file, or larger than 1 MiB.");
        }

        bool yaml = Path.GetExtension(path).ToLowerInvariant() is ".yaml" or ".yml";
        string format = yaml ? "YAML" : "JSON", text = File.ReadAllText(path);
        string? json = null;
        ExperimentPlan plan;
        try
        {
            json = yaml ? PlanYaml.ToJson(text) : text;
            plan = JsonSerializer.Deserialize<ExperimentPlan>(json, XNetTrainer.Options.Json) ?? throw new JsonException("it is null");
        }
        catch (YamlException ex)
        {
            string where = ex.Start.Equals(Mark.Empty) ? "" : $"line {ex.Start.Line}, column {ex.Start.Column}: ";
            throw new InvalidDataException($"Experiment plan '{path}' is not valid YAML for a plan: {where}{ex.Message}", ex);
        }
        catch (JsonException ex)
        {
            // Of a YAML plan, the field's path says where; the line and byte are the converted text's, not the file's.
            string reason = yaml && ex.Message.IndexOf(" | LineNumber", StringComparison.Ordinal) is int cut and > 0 ? ex.Message[..cut] + "." : ex.Message;
            // A converter's own message (a range that is not two numbers) does not say where; the path does.
            reason = UnknownField(json) ?? (ex.Path is { Length: > 1 } at && !reason.Contains("Path: ", StringComparison.Ordinal) ? $"{at}: {reason}" : reason);
            throw new InvalidDataException($"Experiment plan '{path}' is not valid {format} for a plan: {reason}", ex);
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

    /// <summary>
    /// The first name in the plan, at any depth (a recipe's option, a schedule's field), that its object has no field
    /// for, with the name it most likely meant and, for small objects, the names it takes (System.Text.Json's own
    /// message names a .NET type instead); null when every name is known or the text is no JSON object.
    /// </summary>
    private static string? UnknownField(string? json)
    {
        try
        {
            return JsonNode.Parse(json ?? "", documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })
                is JsonObject root ? UnknownField(root, typeof(ExperimentPlan), "") : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <param name="given">The object as written.</param>
    /// <param name="type">What it is read into.</param>
    /// <param name="path">Its dotted path in the plan ("" for the plan itself).</param>
    private static string? UnknownField(JsonObject given, Type type, string path)
    {
        string what = path == "" ? "the plan" : $"'{path}'";
        var info = XNetTrainer.Options.Json.GetTypeInfo(Nullable.GetUnderlyingType(type) ?? type);
        string? discriminator = info.PolymorphismOptions?.TypeDiscriminatorPropertyName;
        if (discriminator is not null)
        {
            // A polymorphic object (a learning-rate schedule): its fields are those of the kind it names.
            string? kind = given[discriminator] is JsonValue value && value.TryGetValue(out string? text) ? text : null;
            var derived = info.PolymorphismOptions!.DerivedTypes.FirstOrDefault(d => d.TypeDiscriminator as string == kind).DerivedType;
            if (derived is null)
            {
                return null; // no kind, or an unknown one: the serializer's own message says so
            }

            info = XNetTrainer.Options.Json.GetTypeInfo(derived);
            what = $"{what} (kind {kind})";
        }

        if (info.Kind != JsonTypeInfoKind.Object)
        {
            return null;
        }

        var names = (discriminator is null ? [] : new[] { discriminator }).Concat(info.Properties.Select(p => p.Name)).ToArray();
        foreach (var (key, value) in given)
        {
            var property = info.Properties.FirstOrDefault(p => p.Name == key);
            if (property is null && key != discriminator)
            {
                string takes = names.Length <= 12 ? $"; it takes {string.Join(", ", names)}" : "";
                return $"{what} has no field '{key}'{Meant(key, names)}{takes}.";
            }

            if (property is not null && value is JsonObject inner &&
                UnknownField(inner, property.PropertyType, path == "" ? key : $"{path}.{key}") is string unknown)
            {
                return unknown;
            }
        }

        return null;
    }

    /// <summary>A near spelling of <paramref name="name"/> among <paramref name="names"/>, or one it begins (warmup: warmupEpochs).</summary>
    private static string Meant(string name, IReadOnlyCollection<string> names) =>
        (Architectures.Spelling.Closest(name, names, 1, within: Math.Max(2, name.Length / 3)).FirstOrDefault()
         ?? names.FirstOrDefault(n => name.Length >= 4 && n.StartsWith(name, StringComparison.OrdinalIgnoreCase))) is string meant
            ? $" (did you mean '{meant}'?)" : "";

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
            Architectures.ModelZoo.EnsureKnown(model, "models");
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

        (Recipe ?? throw new ArgumentException("'recipe' is null.")).Validate();
        if (Recipe.ValidationSetFraction is null)
        {
            throw new ArgumentException("'recipe.validationSetFraction' is not set: model selection needs a validation split held out of the training data.");
        }
    }
}
