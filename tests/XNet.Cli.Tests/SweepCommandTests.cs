using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// <c>xnet sweep PLAN</c> on a tiny plan (2 models x 2 seeds x 1 epoch on the embedded subset): results.csv, results.md
/// and both plots; a second sitting skips finished runs, and a run whose result is gone resumes from its checkpoint to
/// the same test accuracy.
/// </summary>
[TestClass]
public sealed class SweepCommandTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void TinyPlanWritesResultsTableAndPlotsAndResumes()
    {
        string root = TestFolders.Create(TestContext);
        string plan = Path.Combine(root, "tiny.json");
        File.WriteAllText(plan, """
            { "name": "tiny", "models": ["x-resnet-8-2", "resnet-8"], "seeds": [0, 1],
              "recipe": { "epoch": 1, "batchSize": 64, "learningRate": 0.05, "learningRateSchedule": { "kind": "cosine", "warmupEpochs": 0 }, "validationSetFraction": 0.1 },
              "trainLimit": 300, "testLimit": 100 }
            """);
        string output = Path.Combine(root, "out");

        var (exit, text) = XNetRunner.Run("sweep", plan, "--output-dir", output);

        Assert.AreEqual(0, exit, text);
        StringAssert.Matches(text, new System.Text.RegularExpressions.Regex(@"\(build \d+\.\d+\.\d+"), "the log names the build the runs ran on");
        var csv = File.ReadAllLines(Path.Combine(output, "results.csv"));
        Assert.AreEqual("model,parameters,macs,seed,test_accuracy,best_validation_accuracy,best_validation_epoch,epochs,wall_seconds,images_per_second", csv[0]);
        CollectionAssert.AreEqual(new[] { "x-resnet-8-2,0", "resnet-8,0", "x-resnet-8-2,1", "resnet-8,1" },
            csv.Skip(1).Select(l => l.Split(',')).Select(f => $"{f[0]},{f[3]}").ToArray());
        Assert.IsTrue(csv.Skip(1).All(l => double.Parse(l.Split(',')[4], System.Globalization.CultureInfo.InvariantCulture) is >= 0 and <= 1));
        var table = File.ReadAllText(Path.Combine(output, "results.md"));
        StringAssert.Contains(table, "| x-resnet-8-2 | 2 | ");
        StringAssert.Contains(table, "| resnet-8 | 2 | 77,754 | ");
        Assert.AreEqual(2, table.Split('\n').Count(l => l.StartsWith("| ", StringComparison.Ordinal) && l.Split(" ± ").Length == 3), table);
        foreach (string plot in new[] { "accuracy-vs-macs.png", "accuracy-vs-parameters.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(output, plot));
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4], plot);
        }

        Assert.IsTrue(File.Exists(Path.Combine(output, "runs", "resnet-8", "seed-1", "model.xnet")));
        Assert.IsTrue(File.Exists(Path.Combine(output, "runs", "resnet-8", "seed-1", "metrics.csv")));

        // A second sitting: nothing to train. Then one result is lost: that run resumes from its last checkpoint.
        var (again, againText) = XNetRunner.Run("sweep", plan, "--output-dir", output);
        Assert.AreEqual(0, again, againText);
        Assert.AreEqual(4, againText.Split("done before, skipped").Length - 1, againText);
        CollectionAssert.AreEqual(csv, File.ReadAllLines(Path.Combine(output, "results.csv")));
        File.Delete(Path.Combine(output, "runs", "x-resnet-8-2", "seed-1", "result.json"));
        var (report, reportText) = XNetRunner.Run("sweep", plan, "--output-dir", output, "--report");
        Assert.AreEqual(0, report, reportText);
        StringAssert.Contains(reportText, "x-resnet-8-2 seed 1: not run yet");
        Assert.HasCount(4, File.ReadAllLines(Path.Combine(output, "results.csv")), "the report holds the 3 finished runs");
        // With a run of seed 0 gone as well, the interrupted run of seed 1 goes first: what was begun is finished first.
        Directory.Delete(Path.Combine(output, "runs", "resnet-8", "seed-0"), recursive: true);
        var (resumed, resumedText) = XNetRunner.Run("sweep", plan, "--output-dir", output);
        Assert.AreEqual(0, resumed, resumedText);
        StringAssert.Contains(resumedText, "x-resnet-8-2 seed 1: resuming");
        Assert.IsLessThan(resumedText.IndexOf("resnet-8 seed 0: training", StringComparison.Ordinal),
            resumedText.IndexOf("x-resnet-8-2 seed 1: resuming", StringComparison.Ordinal), resumedText);
        var after = File.ReadAllLines(Path.Combine(output, "results.csv"));
        Assert.AreEqual(csv[3].Split(',')[4], after[3].Split(',')[4], "the resumed run's test accuracy");
        static string[] Outcomes(string[] lines) => lines.Select(l => string.Join(',', l.Split(',')[..8])).ToArray(); // not the times
        CollectionAssert.AreEqual(Outcomes(csv), Outcomes(after), "every run as before, the retrained one included, in plan order");
    }

    [TestMethod]
    public void TwoSweepsOnOnePlanShareItsRuns()
    {
        string root = TestFolders.Create(TestContext);
        string plan = Path.Combine(root, "shared.yaml");
        File.WriteAllText(plan, """
            name: shared
            models: [x-resnet-8-2, resnet-8, g-resnet-8-2]
            seeds: [0, 1]
            recipe: { epoch: 1, batchSize: 64, learningRate: 0.05, validationSetFraction: 0.1 }
            trainLimit: 300
            testLimit: 100
            """);
        string output = Path.Combine(root, "out");

        // Started together, as one would start one per core; each run is trained by exactly one of them.
        var sweeps = Enumerable.Range(0, 2).Select(_ => Task.Run(() => XNetRunner.Run("sweep", plan, "--output-dir", output))).ToArray();
        Task.WaitAll(sweeps);

        string text = string.Join("\n", sweeps.Select(s => s.Result.Output));
        Assert.IsTrue(sweeps.All(s => s.Result.ExitCode == 0), text);
        foreach (string model in new[] { "x-resnet-8-2", "resnet-8", "g-resnet-8-2" })
        {
            foreach (int seed in new[] { 0, 1 })
            {
                Assert.AreEqual(1, text.Split($"{model} seed {seed}: training").Length - 1, $"{model} seed {seed} trained once: {text}");
                Assert.IsFalse(File.Exists(Path.Combine(output, "runs", model, $"seed-{seed}", "sweep.lock")), "claims are released");
            }
        }

        var csv = File.ReadAllLines(Path.Combine(output, "results.csv"));
        Assert.HasCount(7, csv, "the last sweep to finish wrote every run: " + string.Join("\n", csv));
        var table = File.ReadAllLines(Path.Combine(output, "results.md"));
        Assert.AreEqual(3, table.Count(l => l.StartsWith("| ", StringComparison.Ordinal) && l.Split(" ± ").Length == 3), string.Join("\n", table));
        TestContext.WriteLine(text);
    }

    [TestMethod]
    public void ABadPlanIsOneLineNamingTheFileAndTheField()
    {
        string root = TestFolders.Create(TestContext);
        string plan = Path.Combine(root, "bad.json");
        File.WriteAllText(plan, """{ "models": ["x-resnet-8-2", "foonet-8"], "seeds": [0] }""");

        var (exit, text) = XNetRunner.Run("sweep", plan);

        Assert.AreEqual(1, exit, text);
        StringAssert.Contains(text, $"Experiment plan '{plan}'");
        StringAssert.Contains(text, "Unknown architecture 'foonet-8'");
        StringAssert.Contains(text, "(Parameter 'models')"); // the plan's field, not the library's parameter name

        // A name the zoo parses but cannot build stops the plan before the first run trains.
        File.WriteAllText(plan, """{ "models": ["x-resnet-8-2", "resnet-9"], "seeds": [0] }""");
        (exit, text) = XNetRunner.Run("sweep", plan, "--output-dir", Path.Combine(root, "out"));
        Assert.AreEqual(1, exit, text);
        StringAssert.Contains(text, "depth 9 must be 6n + 2");
        Assert.IsFalse(Directory.Exists(Path.Combine(root, "out", "runs")), "nothing trained");
        File.WriteAllText(plan, """{ "models": ["resnet-8"], "sedes": [0] }""");
        (exit, text) = XNetRunner.Run("sweep", plan);
        Assert.AreEqual(1, exit, text);
        StringAssert.Contains(text, "sedes");

        // The same checks for a plan in YAML.
        string yaml = Path.Combine(root, "bad.yaml");
        File.WriteAllText(yaml, "models: [resnet-8, foonet-8]\nseeds: [0]\n");
        (exit, text) = XNetRunner.Run("sweep", yaml);
        Assert.AreEqual(1, exit, text);
        StringAssert.Contains(text, $"Experiment plan '{yaml}'");
        StringAssert.Contains(text, "Unknown architecture 'foonet-8'");
    }

    [TestMethod]
    public void TheCommittedExperimentPlansAreValid()
    {
        string plans = Path.Combine(BuiltPrograms.RepositoryRoot, "docs", "experiments");
        var files = Directory.GetFiles(plans, "*.json");
        Assert.IsGreaterThanOrEqualTo(3, files.Length, plans);
        foreach (string file in files)
        {
            var plan = MLNet.Experiments.ExperimentPlan.Load(file);
            Assert.AreEqual(3, plan.Seeds.Count, file);
            Assert.IsGreaterThanOrEqualTo(15, plan.Recipe.Epoch, file);
        }
    }
}
