using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet.IO;
using XNet.MLNet.Training;

namespace XNet.MLNet.Experiments;

/// <summary>One finished run of an experiment.</summary>
/// <param name="Model">Zoo name.</param>
/// <param name="Parameters">Effective trainable parameters at the data's input shape and class count.</param>
/// <param name="MultiplyAccumulates">Multiply-accumulates of one image's forward pass.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="TestAccuracy">ML.NET's micro-accuracy on the test set, of the final epoch's model (scored once).</param>
/// <param name="BestValidationAccuracy">The best validation top-1 accuracy over the epochs.</param>
/// <param name="BestValidationEpoch">Its epoch.</param>
/// <param name="Epochs">Epochs trained.</param>
/// <param name="WallSeconds">Training time, across sittings.</param>
/// <param name="ImagesPerSecond">Training throughput of the last epoch.</param>
public sealed record ExperimentResult(string Model, long Parameters, long MultiplyAccumulates, int Seed, double TestAccuracy,
    double? BestValidationAccuracy, int? BestValidationEpoch, int Epochs, double WallSeconds, double ImagesPerSecond);

/// <summary>Mean and sample standard deviation of one model's runs.</summary>
/// <param name="Model">Zoo name.</param>
/// <param name="Runs">Finished runs.</param>
/// <param name="Parameters">Effective parameters.</param>
/// <param name="MultiplyAccumulates">MACs per image.</param>
/// <param name="TestAccuracy">Mean test accuracy.</param>
/// <param name="TestAccuracySd">Its standard deviation (0 for one run).</param>
/// <param name="BestValidationAccuracy">Mean best validation accuracy.</param>
/// <param name="BestValidationAccuracySd">Its standard deviation.</param>
public sealed record ExperimentSummary(string Model, int Runs, long Parameters, long MultiplyAccumulates, double TestAccuracy,
    double TestAccuracySd, double BestValidationAccuracy, double BestValidationAccuracySd);

/// <summary>
/// Runs an <see cref="ExperimentPlan"/>: every (model, seed) pair is an ordinary run folder under
/// <c>runs/&lt;model&gt;/seed-&lt;seed&gt;</c> (model.xnet, metrics.csv, checkpoints). A finished run (its
/// <c>result.json</c> exists) is skipped and an interrupted one resumes from its newest checkpoint, so a grid can be
/// spread over several sittings. Several processes may run one plan into one folder at once (say one per core, each with
/// one thread): each run is claimed by the process that trains it, and the others pass it by. Writes
/// <c>results.csv</c> (one line per finished run) and <c>results.md</c> (mean ± standard deviation per model) into the
/// output folder, each atomically, after every run.
/// </summary>
public static class ExperimentRunner
{
    /// <summary>The per-run result file inside a run folder.</summary>
    public const string ResultFile = "result.json";

    /// <summary>The file a process holds open in a run folder while it trains that run, so that others pass it by.</summary>
    public const string ClaimFile = "sweep.lock";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Runs every (model, seed) pair of <paramref name="plan"/> that has no result yet.</summary>
    /// <param name="mlContext">The ML.NET context (its log receives the trainer's lines).</param>
    /// <param name="plan">The plan (validated here).</param>
    /// <param name="train">Training data: a key-typed Label and a pixel-vector Features column.</param>
    /// <param name="test">Test data, scored once per run after its last epoch.</param>
    /// <param name="outputFolder">Where the run folders and the result files go.</param>
    /// <param name="device">The trainer's device (null: auto).</param>
    /// <param name="log">Receives one line per run as it starts and ends.</param>
    /// <param name="cancellation">Stops the current run at a batch boundary, after a checkpoint.</param>
    /// <param name="trainMissing">False: train nothing, only gather the finished runs into the result files (a report of
    /// a grid spread over several sittings).</param>
    /// <param name="publish">Also writes something of the finished runs (plots, say) each time the result files are
    /// written, with the same runs.</param>
    /// <returns>The results of the finished runs of the plan (this process's and others'), seed by seed, models in plan order.</returns>
    public static IReadOnlyList<ExperimentResult> Run(MLContext mlContext, ExperimentPlan plan, IDataView train, IDataView test,
        string outputFolder, string? device = null, Action<string>? log = null, CancellationToken cancellation = default,
        bool trainMissing = true, Action<IReadOnlyList<ExperimentResult>>? publish = null)
    {
        plan.Validate();
        if (plan.TrainLimit is int trainLimit)
        {
            train = mlContext.Data.TakeRows(train, trainLimit);
        }

        if (plan.TestLimit is int testLimit)
        {
            test = mlContext.Data.TakeRows(test, testLimit);
        }

        train = mlContext.Data.Cache(train);
        test = mlContext.Data.Cache(test);
        var shape = Data.DataViewImages.ResolveShape(train.Schema, "Features", null);
        int classes = (int)Data.DataViewImages.LabelType(train.Schema, "Label").Count;
        // Every model is built (and costed) before the first run, so a configuration error stops the plan before hours of training.
        var costs = plan.Models.ToDictionary(m => m, m => Cost(m, shape, classes));
        // Seed-major: every model gets its first seed before any gets its second, so a plan stopped halfway still compares them all;
        // interrupted runs first, so that processes sharing a plan finish what was begun before they begin anew.
        var runs = plan.Seeds.SelectMany(seed => plan.Models.Select(model => (Seed: seed, Model: model)))
            .OrderBy(r => CheckpointStore.Newest(RunFolder.CheckpointsOf(RunPath(outputFolder, r.Model, r.Seed))).Any() ? 0 : 1)
            .ToList();
        foreach (var (seed, model) in runs)
        {
            var cost = costs[model];
            string folder = RunPath(outputFolder, model, seed);
            string resultPath = Path.Combine(folder, ResultFile);
            if (File.Exists(resultPath))
            {
                log?.Invoke($"{model} seed {seed}: done before, skipped");
                continue;
            }

            if (!trainMissing)
            {
                log?.Invoke($"{model} seed {seed}: not run yet");
                continue;
            }

            using var claim = Claim(folder);
            if (claim is null || File.Exists(resultPath))
            {
                log?.Invoke($"{model} seed {seed}: {(claim is null ? "being trained by another process" : "finished by another process")}, skipped");
                continue;
            }

            bool resuming = CheckpointStore.Newest(RunFolder.CheckpointsOf(folder)).Any();
            var options = resuming ? new XNetTrainer.Options { ResumeFrom = folder } : plan.Recipe.WithSeed(seed);
            options.Architecture = model;
            options.WorkspacePath = folder;
            options.Device = device;
            options.CancellationToken = cancellation;

            log?.Invoke($"{model} seed {seed}: {(resuming ? "resuming" : "training")} ({cost.Parameters:N0} parameters, {cost.MultiplyAccumulates:N0} MACs)");
            using var fitted = mlContext.MulticlassClassification.Trainers.XNet(options).Fit(train);
            var history = fitted.TrainingHistory!;
            double accuracy = mlContext.MulticlassClassification.Evaluate(fitted.Transform(test)).MicroAccuracy;
            var result = new ExperimentResult(model, cost.Parameters, cost.MultiplyAccumulates, seed, accuracy,
                history.BestValidationAccuracy, history.BestValidationEpoch, history.Count, history.Final.Elapsed.TotalSeconds,
                history.Final.ImagesPerSecond);
            AtomicFile.WriteAllLines(resultPath, [JsonSerializer.Serialize(result, Json)]);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"{model} seed {seed}: test accuracy {accuracy:P2}, best validation {history.BestValidationAccuracy:P2}"));
            Publish(outputFolder, plan, publish);
        }

        return Publish(outputFolder, plan, publish);
    }

    /// <summary>The results of the plan's finished runs in <paramref name="outputFolder"/>, seed by seed, models in plan order.</summary>
    /// <exception cref="InvalidDataException">When a run's result file is damaged.</exception>
    private static IReadOnlyList<ExperimentResult> Finished(ExperimentPlan plan, string outputFolder) =>
        plan.Seeds.SelectMany(seed => plan.Models.Select(model => Path.Combine(RunPath(outputFolder, model, seed), ResultFile)))
            .Where(File.Exists).Select(ReadResult).ToArray();

    /// <summary>
    /// Writes the result files from the run folders as they are now, and again while another process finished a run in
    /// the meantime: the last process to write has seen every run finished before its write.
    /// </summary>
    private static IReadOnlyList<ExperimentResult> Publish(string outputFolder, ExperimentPlan plan,
        Action<IReadOnlyList<ExperimentResult>>? publish)
    {
        while (true)
        {
            var results = Finished(plan, outputFolder);
            WriteResults(outputFolder, plan, results);
            publish?.Invoke(results);
            if (Finished(plan, outputFolder).Count == results.Count)
            {
                return results;
            }
        }
    }

    /// <summary>Holds the run folder's claim for this process, or null when another process holds it.</summary>
    private static FileStream? Claim(string folder)
    {
        Directory.CreateDirectory(folder);
        try
        {
            // Nobody waits for a claim (a process that finds one held passes the run by), so deleting it on close is safe.
            return new FileStream(Path.Combine(folder, ClaimFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1,
                FileOptions.DeleteOnClose);
        }
        catch (IOException) when (File.Exists(Path.Combine(folder, ClaimFile)))
        {
            return null;
        }
    }

    /// <summary>Mean and standard deviation per model, in the order the models first appear.</summary>
    public static IReadOnlyList<ExperimentSummary> Summarize(IEnumerable<ExperimentResult> results) =>
        results.GroupBy(r => r.Model).Select(g =>
        {
            var (test, testSd) = MeanSd(g.Select(r => r.TestAccuracy));
            var (validation, validationSd) = MeanSd(g.Where(r => r.BestValidationAccuracy is not null).Select(r => r.BestValidationAccuracy!.Value));
            var first = g.First();
            return new ExperimentSummary(g.Key, g.Count(), first.Parameters, first.MultiplyAccumulates, test, testSd, validation, validationSd);
        }).ToArray();

    /// <summary>The run folder of (model, seed) under <paramref name="outputFolder"/>.</summary>
    public static string RunPath(string outputFolder, string model, int seed) =>
        Path.Combine(outputFolder, "runs", model.ToLowerInvariant(), string.Create(CultureInfo.InvariantCulture, $"seed-{seed}"));

    private static ModelCost Cost(string model, ImageShape shape, int classes)
    {
        try
        {
            using var network = ModelZoo.Create(model, shape, classes, seed: 0);
            return ModelCost.Measure(network, shape);
        }
        catch (ArgumentException ex)
        {
            // Every model is built here before the first run trains: say which one the plan cannot build.
            throw new ArgumentException($"Model '{model}' of the plan cannot be built for {shape} and {classes} classes: {ex.Message}", "models", ex);
        }
    }

    private static ExperimentResult ReadResult(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<ExperimentResult>(File.ReadAllText(path), Json)
                   ?? throw new InvalidDataException("it is empty");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Run result '{path}' is damaged ({ex.Message}); delete it to run that model and seed again.", ex);
        }
    }

    private static void WriteResults(string outputFolder, ExperimentPlan plan, IReadOnlyList<ExperimentResult> results)
    {
        Directory.CreateDirectory(outputFolder);
        var culture = CultureInfo.InvariantCulture;
        AtomicFile.WriteAllLines(Path.Combine(outputFolder, "results.csv"), new[]
        {
            "model,parameters,macs,seed,test_accuracy,best_validation_accuracy,best_validation_epoch,epochs,wall_seconds,images_per_second",
        }.Concat(results.Select(r => string.Create(culture,
            $"{r.Model},{r.Parameters},{r.MultiplyAccumulates},{r.Seed},{r.TestAccuracy:R},{r.BestValidationAccuracy:R},{r.BestValidationEpoch}," +
            $"{r.Epochs},{r.WallSeconds:F1},{r.ImagesPerSecond:F0}"))));
        var recipe = JsonSerializer.SerializeToNode(plan.Recipe, XNetTrainer.Options.Json)!.AsObject();
        foreach (string perRun in new[] { "architecture", "seed", "tags" })
        {
            recipe.Remove(perRun);
        }

        AtomicFile.WriteAllLines(Path.Combine(outputFolder, "results.md"), new[]
        {
            $"### {plan.Name}",
            "",
            $"Seeds {string.Join(", ", plan.Seeds)}; model selection on the held-out validation split; test accuracy: the final epoch's " +
                "model, scored once; mean ± standard deviation over seeds. The recipe (the trainer's options):",
            "",
            $"`{recipe.ToJsonString()}`",
            "",
            "| model | runs | parameters | MACs | test accuracy | best validation accuracy |",
            "|---|---|---|---|---|---|",
        }.Concat(Summarize(results).Select(s => string.Create(culture,
            $"| {s.Model} | {s.Runs} | {s.Parameters:N0} | {s.MultiplyAccumulates:N0} | {100 * s.TestAccuracy:F2} ± {100 * s.TestAccuracySd:F2} % | " +
            $"{100 * s.BestValidationAccuracy:F2} ± {100 * s.BestValidationAccuracySd:F2} % |"))));
    }

    private static (double Mean, double Sd) MeanSd(IEnumerable<double> values)
    {
        var list = values.ToArray();
        if (list.Length == 0)
        {
            return (double.NaN, double.NaN);
        }

        double mean = list.Average();
        double sd = list.Length > 1 ? Math.Sqrt(list.Sum(v => (v - mean) * (v - mean)) / (list.Length - 1)) : 0;
        return (mean, sd);
    }
}
