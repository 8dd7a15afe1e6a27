using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// Hostile command lines: absurd numbers, unknown names, values that are not numbers. Each is a usage error (exit code 2)
/// with one <c>error:</c> line naming the flag or the value, found before any data is trained on or any run folder is
/// written; the absurd sizes must not reach an allocation (they run as child processes with a memory limit).
/// </summary>
[TestClass]
public sealed class HostileUsageTests : HostileTestBase
{
    [TestMethod]
    [DataRow("--batch-size", "2147483647")]
    [DataRow("--batch-size", "0")]
    [DataRow("--batch-size", "-1")]
    [DataRow("--batch-size", "99999999999")]
    [DataRow("--batch-size", "ten")]
    [DataRow("--epochs", "0")]
    [DataRow("--epochs", "-1")]
    [DataRow("--epochs", "1.5")]
    [DataRow("--image-size", "-5")]
    [DataRow("--image-size", "0")]
    [DataRow("--lr", "NaN")]
    [DataRow("--lr", "Infinity")]
    [DataRow("--lr", "-1")]
    [DataRow("--lr", "0")]
    [DataRow("--momentum", "1")]
    [DataRow("--momentum", "NaN")]
    [DataRow("--weight-decay", "NaN")]
    [DataRow("--warmup-epochs", "NaN")]
    [DataRow("--min-lr", "NaN")]
    [DataRow("--validation-fraction", "NaN")]
    [DataRow("--validation-fraction", "1.5")]
    [DataRow("--crop-padding", "-1")]
    [DataRow("--random-erasing", "1.5")]
    [DataRow("--random-erasing", "NaN")]
    [DataRow("--label-smoothing", "1")]
    [DataRow("--label-smoothing", "-0.1")]
    [DataRow("--checkpoint-every", "-1")]
    [DataRow("--keep-checkpoints", "0")]
    [DataRow("--channel-mean", "1,2")]
    [DataRow("--channel-mean", "NaN,NaN,NaN")]
    [DataRow("--channel-std", "0,0,0")]
    [DataRow("--model", "x-resnet-9999")]
    [DataRow("--model", "../../etc/passwd")]
    [DataRow("--device", "tpu")]
    [DataRow("--device", "cuda:99999999999")]
    [DataRow("--optimizer", "rmsprop")]
    public void TrainRefusesAnAbsurdOptionValue(string flag, string value)
    {
        string root = NewFolder();
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        string output = Path.Combine(root, "out");
        string[] model = flag == "--model" ? [] : ["--model", "x-resnet-8-2"];

        var run = HostileCases.Run(["train", "--data", data, .. model, "--epochs", "1", "--output-dir", output, flag, value]);

        HostileCases.AssertRefused(run, 2, [$"{flag}||{value}"], absent: [output]);
    }

    [TestMethod]
    [DataRow("--decay-level", "NaN")]
    [DataRow("--decay-interval", "0")]
    public void TrainRefusesAnAbsurdStepSchedule(string flag, string value)
    {
        string root = NewFolder();
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        string output = Path.Combine(root, "out");

        var run = HostileCases.Run("train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "1", "--output-dir", output,
            "--scheduler", "step", flag, value);

        HostileCases.AssertRefused(run, 2, [$"{flag}||{value}"], absent: [output]);
    }

    [TestMethod]
    [DataRow("--model", "", "--model")]
    [DataRow("--frobnicate", "1", "frobnicate")]
    public void TrainRefusesAnEmptyOrUnknownOption(string flag, string value, string culprit)
    {
        string root = NewFolder();
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        string output = Path.Combine(root, "out");

        var run = HostileCases.Run("train", "--data", data, "--epochs", "1", "--output-dir", output, flag, value);

        HostileCases.AssertRefused(run, 2, [culprit], absent: [output]);
    }

    [TestMethod]
    public void TrainRefusesAnAbsurdImageSizeBeforeReadingAnImage()
    {
        string root = NewFolder();
        string data = Path.Combine(root, "images");
        foreach (string label in new[] { "a", "b" })
        {
            HostileCases.WriteImage(Path.Combine(data, label, "0.bmp"), size: 12, seed: label[0]);
        }

        string output = Path.Combine(root, "out");

        var run = HostileCases.RunIsolated(TimeSpan.FromSeconds(12),
            ["train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "1", "--output-dir", output, "--image-size", "100000"]);

        HostileCases.AssertRefused(run, 2, ["--image-size||100000"], absent: [output]);
    }

    [TestMethod]
    public void TrainRefusesAnAbsurdCropPadding()
    {
        string root = NewFolder();
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        string output = Path.Combine(root, "out");

        var run = HostileCases.RunIsolated(TimeSpan.FromSeconds(12),
            ["train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "1", "--batch-size", "5", "--output-dir", output, "--crop-padding", "100000"]);

        HostileCases.AssertRefused(run, 2, ["--crop-padding||100000"], absent: [output]);
    }

    [TestMethod]
    [DataRow("--classes", "1000000000")]
    [DataRow("--classes", "0")]
    [DataRow("--input", "3x100000x100000")]
    [DataRow("--input", "0x32x32")]
    [DataRow("--input", "3x32")]
    public void ModelsRefusesAnAbsurdSize(string flag, string value)
    {
        // x-resnet-20-8 (and its dense twin resnet-20) are listed variants, so the command measures them at that size.
        var run = HostileCases.RunIsolated(TimeSpan.FromSeconds(10), ["models", "x-resnet-20-8", flag, value]);

        HostileCases.AssertRefused(run, 2, [$"{flag}||{value}"]);
    }

    [TestMethod]
    [DataRow("evaluate", "--split", "validation")]
    [DataRow("predict", "--image", "")]
    [DataRow("export", "--onnx", "")]
    public void OtherCommandsRefuseAnAbsurdOptionValue(string command, string flag, string value)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        var before = Snapshot.Of(folder);
        string[] args = command switch
        {
            "evaluate" => ["evaluate", "--model", fixture.Model, "--data", fixture.Cifar, flag, value],
            "predict" => ["predict", "--model", fixture.Model, flag, value],
            _ => ["export", "--model", fixture.Model, flag, value],
        };

        var run = HostileCases.Run(args);

        HostileCases.AssertRefused(run, 2, [flag], unchanged: before);
    }

    [TestMethod]
    [DataRow("a named pipe (FIFO)")]
    [DataRow("JSON null")]
    [DataRow("a directory")]
    [DataRow("not JSON")]
    public void SweepRefusesAHostilePlan(string damage)
    {
        string folder = NewFolder();
        string plan = Path.Combine(folder, "plan.json");
        switch (damage)
        {
            case "a named pipe (FIFO)": HostileCases.MakeFifo(plan); break;
            case "JSON null": File.WriteAllText(plan, "null"); break;
            case "a directory": Directory.CreateDirectory(plan); break;
            default: File.WriteAllText(plan, "{ \"name\": \"x\", "); break;
        }

        string output = Path.Combine(folder, "out");

        var run = HostileCases.RunIsolated(TimeSpan.FromSeconds(10), ["sweep", plan, "--output-dir", output]);

        HostileCases.AssertRefused(run, 1, [plan], absent: [output]);
    }
}
