using System.Text.Json;
using XNet.MLNet.Experiments;

namespace XNet.MLNet.Tests;

/// <summary>Experiment plans in JSON and in YAML: the same plan either way, and bad files named with what is wrong.</summary>
[TestClass]
public sealed class ExperimentPlanTests
{
    private string root = null!;

    [TestInitialize]
    public void CreateRoot() => root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"xnet-plan-{Guid.NewGuid():N}")).FullName;

    [TestCleanup]
    public void DeleteRoot() => Directory.Delete(root, recursive: true);

    [TestMethod]
    public void AYamlPlanReadsAsItsJsonTwin()
    {
        var json = Load("plan.json", """
            { "name": "DenseNet pair", "data": "fashion", "models": ["densenet-bc-40-24", "x-densenet-bc-40-24-2"], "seeds": [0, 1, 2],
              "recipe": { "epoch": 15, "batchSize": 128, "learningRate": 0.1, "weightDecay": 0.0005,
                          "learningRateSchedule": { "kind": "cosine", "warmupEpochs": 1, "minimum": 0 },
                          "randomCropPadding": 2, "horizontalFlip": true, "validationSetFraction": 0.1 },
              "trainLimit": 5000 }
            """);
        var yaml = Load("plan.yaml", """
            # One DenseNet-BC pair.
            name: 'DenseNet pair'
            data: fashion
            models: [densenet-bc-40-24, x-densenet-bc-40-24-2]
            seeds:
              - 0
              - 1
              - 2
            recipe:
              epoch: 15
              batchSize: 128
              learningRate: 0.1
              weightDecay: 5e-4
              learningRateSchedule: { kind: cosine, warmupEpochs: 1, minimum: 0 }
              randomCropPadding: 2
              horizontalFlip: true
              validationSetFraction: 0.1
            trainLimit: 5000
            testLimit: ~
            """);

        Assert.AreEqual(json.Name, yaml.Name);
        Assert.AreEqual(json.Data, yaml.Data, "a relative data folder is resolved against the plan's folder either way");
        CollectionAssert.AreEqual(json.Models.ToArray(), yaml.Models.ToArray());
        CollectionAssert.AreEqual(json.Seeds.ToArray(), yaml.Seeds.ToArray());
        Assert.AreEqual(json.TrainLimit, yaml.TrainLimit);
        Assert.IsNull(yaml.TestLimit);
        Assert.AreEqual(JsonSerializer.Serialize(json.Recipe, XNetTrainer.Options.Json), JsonSerializer.Serialize(yaml.Recipe, XNetTrainer.Options.Json));
    }

    [TestMethod]
    public void AQuotedYamlNumberIsAStringAndTheMessageNamesTheField()
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Load("plan.yml", """
            models: [resnet-8]
            recipe: { epoch: "15", validationSetFraction: 0.1 }
            """));

        StringAssert.StartsWith(ex.Message, $"Experiment plan '{Path.Combine(root, "plan.yml")}' is not valid YAML for a plan: ");
        StringAssert.Contains(ex.Message, "$.recipe.epoch");
        Assert.IsFalse(ex.Message.Contains("LineNumber", StringComparison.Ordinal), "the converted text's lines are not the file's: " + ex.Message);
    }

    [TestMethod]
    [DataRow("models: [resnet-8\nseeds: [0]\n", "line 1, column 9: the text cannot be read as YAML after this point")]
    [DataRow("models: [resnet-8]\n---\nmodels: [resnet-20]\n", "one YAML document; this text holds 2")]
    [DataRow("models: &m [resnet-8, *m]\n", "nests deeper than 32 levels")]
    [DataRow("models: [resnet-8]\nseeds: 0: 1\n", "line 2, column ")]
    [DataRow("models: [resnet-8]\nmodels: [resnet-20]\n", "line 2, column ")]
    [DataRow("# nothing but a comment\n", "one YAML document; this text holds 0")]
    public void BrokenYamlIsOneMessageNamingTheFile(string text, string expected)
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Load("plan.yaml", text));

        StringAssert.StartsWith(ex.Message, $"Experiment plan '{Path.Combine(root, "plan.yaml")}' is not valid YAML for a plan: ");
        StringAssert.Contains(ex.Message, expected, ex.Message);
    }

    [TestMethod]
    public void YamlPlansGoThroughThePlansChecks()
    {
        var unknownField = Assert.ThrowsExactly<InvalidDataException>(() => Load("plan.yaml", "models: [resnet-8]\nsedes: [0]\n"));
        StringAssert.Contains(unknownField.Message, "sedes");
        var noValidation = Assert.ThrowsExactly<InvalidDataException>(() => Load("plan.yaml", "models: [resnet-8]\nrecipe: { epoch: 1 }\n"));
        StringAssert.Contains(noValidation.Message, "'recipe.validationSetFraction' is not set");
        var json = Assert.ThrowsExactly<InvalidDataException>(() => Load("plan.json", "models: [resnet-8]\n"));
        StringAssert.Contains(json.Message, "is not valid JSON for a plan", "a .json file is read as JSON only");
    }

    [TestMethod]
    [DataRow("plan.yaml", "models: [resnet-8]\nsedes: [0]\n", "the plan has no field 'sedes' (did you mean 'seeds'?); it takes name, data, models, seeds, recipe")]
    [DataRow("plan.json", """{ "model": ["resnet-8"] }""", "the plan has no field 'model' (did you mean 'models'?)")]
    [DataRow("plan.yaml", "models: [resnet-8]\nrecipe: { epochs: 1, validationSetFraction: 0.1 }\n", "'recipe' has no field 'epochs' (did you mean 'epoch'?).")]
    [DataRow("plan.json", """{ "models": ["resnet-8"], "recipe": { "LearningRate": 0.1 } }""", "'recipe' has no field 'LearningRate' (did you mean 'learningRate'?)")]
    [DataRow("plan.json", """{ "models": ["resnet-8"], "recipe": { "frobnicate": 1 } }""", "'recipe' has no field 'frobnicate'.")]
    [DataRow("plan.yaml", "models: [resnet-8]\nrecipe:\n  learningRateSchedule: { kind: cosine, warmup: 1 }\n", "'recipe.learningRateSchedule' (kind cosine) has no field 'warmup' (did you mean 'warmupEpochs'?); it takes kind, ")]
    [DataRow("plan.json", """{ "models": ["resnet-8"], "recipe": { "earlyStoppingCriteria": { "metric": "loss", "patients": 2 } } }""", "'recipe.earlyStoppingCriteria' has no field 'patients' (did you mean 'patience'?)")]
    [DataRow("plan.yaml", "models: [resnet-8]\nrecipe: { cropScale: [0.5], validationSetFraction: 0.1 }\n", "$.recipe.cropScale: a range is an array of two numbers")]
    [DataRow("plan.json", """{ "models": ["resnet-8"], "recipe": { "cropScale": [0.5] } }""", "$.recipe.cropScale: a range is an array of two numbers")]
    public void AMisspeltNameOrABadValueIsNamedWithWhereItIs(string name, string text, string expected)
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => Load(name, text));

        StringAssert.Contains(ex.Message, expected, ex.Message);
        Assert.IsFalse(ex.Message.Contains("XNet.MLNet.", StringComparison.Ordinal), "no .NET type names: " + ex.Message);
    }

    private ExperimentPlan Load(string name, string text)
    {
        string path = Path.Combine(root, name);
        File.WriteAllText(path, text);
        return ExperimentPlan.Load(path);
    }
}
