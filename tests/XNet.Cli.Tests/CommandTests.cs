using Microsoft.ML;
using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

[TestClass]
public sealed class CommandTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void BenchComparesAModelWithItsDenseTwin()
    {
        var (exitCode, output) = XNetRunner.Run("bench", "x-resnet-8-2", "--input", "1x8x8", "--classes", "2", "--batch-size", "4",
            "--rounds", "3", "--steps", "1", "--device", "cpu");

        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, "x-resnet-8-2 and resnet-8 at 1x8x8, 2 classes, batch 4, on cpu");
        StringAssert.Contains(output, "40,370"); // x-resnet-8-2's effective parameters at 1x8x8
        StringAssert.Contains(output, "77,234"); // resnet-8's
        StringAssert.Matches(output, new System.Text.RegularExpressions.Regex(
            @"x-resnet-8-2 against resnet-8: training \d+\.\d\dx, scoring \d+\.\d\dx"));
    }

    [TestMethod]
    [DataRow("--rounds", "0", "--rounds 0 must be from 1 to 1,000")]
    [DataRow("--steps", "-1", "--steps -1 must be from 1 to 1,000")]
    [DataRow("--batch-size", "0", "--batch-size 0 must be from 1 to 4,096")]
    [DataRow("--input", "3x0x9", "--input '3x0x9' is not CxHxW")]
    [DataRow("--device", "tpu", "--device 'tpu' must be cpu, cuda or cuda:N")]
    [DataRow("--twin", "y-net", "Unknown architecture 'y-net'")]
    public void BenchRefusesABadOption(string flag, string value, string message)
    {
        var (exitCode, output) = XNetRunner.Run("bench", "x-resnet-8-2", "--input", "1x8x8", flag, value);

        Assert.AreEqual(2, exitCode, output);
        StringAssert.Contains(output, message);
        Assert.AreEqual(1, output.Split('\n').Count(l => l.StartsWith("error:", StringComparison.Ordinal)), output);
    }

    [TestMethod]
    [DataRow("train")]
    [DataRow("evaluate")]
    [DataRow("predict")]
    [DataRow("export")]
    [DataRow("models")]
    [DataRow("sweep")]
    [DataRow("bench")]
    public void HelpListsEveryOption(string command)
    {
        // Option descriptions are console markup: an unescaped bracket such as "[0, 1)" would end the help in an error.
        var (exitCode, output) = XNetRunner.Run(command, "--help");

        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, "OPTIONS:");
        Assert.IsFalse(output.Contains("error:", StringComparison.Ordinal), output);
        StringAssert.Contains(output, "-h, --help");
    }

    [TestMethod]
    public void TrainedModelEvaluatesOnItsDatasetAndRefusesAnotherOne()
    {
        string root = TestFolders.Create(TestContext);
        var (cifar10, run) = TrainTinyCifar10(root, epochs: 1, batchSize: 4);
        var (cifar100, _) = GeneratedDatasets.WriteCifar100(root, trainRecords: 2, testRecords: 2);

        var (evaluated, output) = XNetRunner.Run("evaluate", "--model", Path.Combine(run, "model.xnet"), "--data", cifar10);
        Assert.AreEqual(0, evaluated, output);
        StringAssert.Contains(output, "x-resnet-8-2 on 5 test images");
        StringAssert.Contains(output, "top-5 accuracy");

        var (refused, error) = XNetRunner.Run("evaluate", "--model", Path.Combine(run, "model.xnet"), "--data", cifar100);
        Assert.AreEqual(1, refused, error);
        StringAssert.Contains(error, "are not the model's (airplane, automobile");
    }

    [TestMethod]
    public void ExportedMlNetZipEvaluatesLikeTheXNetFile()
    {
        string root = TestFolders.Create(TestContext);
        var (cifar10, run) = TrainTinyCifar10(root, epochs: 1, batchSize: 4);
        string onnx = Path.Combine(root, "model.onnx");
        string zip = Path.Combine(root, "model.zip");

        var (exported, exportOutput) = XNetRunner.Run("export", "--model", Path.Combine(run, "model.xnet"), "--onnx", onnx, "--mlnet", zip);
        Assert.AreEqual(0, exported, exportOutput);
        Assert.IsTrue(File.Exists(onnx) && File.Exists(zip), exportOutput);
        var (fromXNet, xnetOutput) = XNetRunner.Run("evaluate", "--model", Path.Combine(run, "model.xnet"), "--data", cifar10);
        var (fromZip, zipOutput) = XNetRunner.Run("evaluate", "--model", zip, "--data", cifar10);
        Assert.AreEqual(0, fromXNet, xnetOutput);
        Assert.AreEqual(0, fromZip, zipOutput);
        StringAssert.Contains(zipOutput, "x-resnet-8-2 (ML.NET zip, ONNX Runtime) on 5 test images");
        string Metrics(string output) => output[output.IndexOf("micro-accuracy", StringComparison.Ordinal)..].Split('\n')[0];
        Assert.AreEqual(Metrics(xnetOutput), Metrics(zipOutput));

        var (notAModel, error) = XNetRunner.Run("export", "--model", onnx, "--mlnet", Path.Combine(root, "again.zip"));
        Assert.AreEqual(1, notAModel, error);
        StringAssert.Contains(error, "is neither an X-Net model file");
        Assert.IsFalse(File.Exists(Path.Combine(root, "again.zip")));
    }

    [TestMethod]
    public void ResumingACompletedRunReportsItsEpochsAndTrainsNoMore()
    {
        string root = TestFolders.Create(TestContext);
        var (_, run) = TrainTinyCifar10(root, epochs: 2, batchSize: 5);

        var (resumed, output) = XNetRunner.Run("train", "--resume", run);

        Assert.AreEqual(0, resumed, output);
        string flat = output.Replace("\n", "");
        StringAssert.Contains(flat, "checkpoint-0002-000000.xckpt (epoch 3, after batch 0)");
        StringAssert.Contains(flat, "Final epoch 2");
        Assert.HasCount(3, File.ReadAllLines(Path.Combine(run, "metrics.csv")), "a header and the 2 epochs, none added");
    }

    [TestMethod]
    public void ModelsListsEffectiveParametersAndMacs()
    {
        var (exitCode, output) = XNetRunner.Run("models", "densenet-bc-40-24");

        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, "DenseNet-BC (CIFAR), input 3x32x32, 10 classes");
        StringAssert.Contains(output, "x-densenet-bc-40-24-2-dt");
        StringAssert.Contains(output, "352,234");
        StringAssert.Contains(output, "144.7 M");
        Assert.DoesNotContain("ResNet", output, "the filter keeps other families out");
    }

    [TestMethod]
    public void ModelsShowsAnUnlistedNameItBuildsAndSaysWhenNothingMatches()
    {
        var (exitCode, output) = XNetRunner.Run("models", "x-resnet-8-2");
        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, "x-resnet-8-2");

        (exitCode, output) = XNetRunner.Run("models", "nosuchnet");
        Assert.AreEqual(1, exitCode, output);
        StringAssert.Contains(output, "no architecture matches 'nosuchnet'");
    }

    [TestMethod]
    public void PredictNamesTheColumnAPipelineZipReadsBesidesThePixels()
    {
        string root = TestFolders.Create(TestContext);
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        var ml = new Microsoft.ML.MLContext(seed: 0);
        var train = XNet.MLNet.Data.ImageDatasets.Load(ml, data, "train").Data;
        // A whole pipeline saved as it was fitted: its label mapping reads the Label column, which predict does not have.
        var pipeline = ml.Transforms.Conversion.MapKeyToValue("Label")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.XNet(new XNet.MLNet.XNetTrainer.Options { Architecture = "x-resnet-8-2", Epoch = 1, BatchSize = 4, Seed = 0 }));
        string zip = Path.Combine(root, "pipeline.zip");
        using (var model = pipeline.Fit(train))
        {
            ml.Model.Save(model, train.Schema, zip);
        }

        string image = Path.Combine(root, "image.bmp");
        GeneratedDatasets.WriteBmp(image, GeneratedDatasets.Pattern(32, 32, seed: 1));

        var (exitCode, output) = XNetRunner.Run("predict", "--model", zip, "--image", image);

        Assert.AreEqual(1, exitCode, output);
        StringAssert.Contains(output.Replace("\n", " "), "reads input column 'Label' besides 'Features'");
        Assert.DoesNotContain("could not be read as an image", output);
    }

    [TestMethod]
    public void ExportRefusesOneFileForBothForms()
    {
        string root = TestFolders.Create(TestContext);
        string same = Path.Combine(root, "model.out");
        var (exitCode, output) = XNetRunner.Run("export", "--model", Path.Combine(root, "model.xnet"), "--onnx", same, "--mlnet", same);
        Assert.AreEqual(2, exitCode, output);
        StringAssert.Contains(output, "--onnx and --mlnet name the same file");
        Assert.IsFalse(File.Exists(same));
    }

    [TestMethod]
    public void ModelsSkipsArchitecturesThatCannotTakeTheInput()
    {
        var (exitCode, output) = XNetRunner.Run("models", "vgg16", "--input", "1x28x28");

        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, "too small");
    }

    [TestMethod]
    public void MissingAndCorruptDataEndWithOneErrorLine()
    {
        string root = TestFolders.Create(TestContext);
        var (missing, missingOutput) = XNetRunner.Run("train", "--data", Path.Combine(root, "nowhere"), "--epochs", "1");
        Assert.AreEqual(1, missing, missingOutput);
        StringAssert.Contains(missingOutput, "error:");
        StringAssert.Contains(missingOutput, "nowhere");

        var (cifar, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 2);
        string batch = Path.Combine(cifar, "data_batch_2.bin");
        File.WriteAllBytes(batch, File.ReadAllBytes(batch)[..100]);
        var (corrupt, corruptOutput) = XNetRunner.Run("train", "--data", cifar, "--epochs", "1");
        Assert.AreEqual(1, corrupt, corruptOutput);
        StringAssert.Contains(corruptOutput, "data_batch_2.bin");
    }

    [TestMethod]
    [DataRow("--scheduler", "linear", "--scheduler 'linear' is not known")]
    [DataRow("--augment", "mixup", "--augment 'mixup' is not known")]
    [DataRow("--image-size", "4", "--image-size 4 must be from 8 to 8192")]
    [DataRow("--lr", "abc", "--lr: 'abc' is not a number.")]
    [DataRow("--epochs", "1.5", "--epochs: '1.5' is not a whole number.")]
    public void BadOptionsAreUsageErrors(string option, string value, string message)
    {
        var (exitCode, output) = XNetRunner.Run("train", option, value);
        Assert.AreEqual(2, exitCode, output);
        StringAssert.Contains(output, message);
    }

    [TestMethod]
    public void VersionNamesTheBuild()
    {
        var (exitCode, output) = XNetRunner.Run("--version");
        Assert.AreEqual(0, exitCode, output);
        StringAssert.Matches(output.Trim(), new System.Text.RegularExpressions.Regex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9a-f]{7,40})?$"));
    }

    [TestMethod]
    public void ImageFolderCachesGoWhereCacheDirSays()
    {
        string root = TestFolders.Create(TestContext);
        string data = Path.Combine(root, "images"), cache = Path.Combine(root, "cache");
        foreach (var (split, count) in new[] { ("train", 4), ("val", 2) })
        {
            foreach (string label in new[] { "cat", "dog" })
            {
                for (int i = 0; i < count; i++)
                {
                    GeneratedDatasets.WriteBmp(Path.Combine(data, split, label, $"{i}.bmp"), GeneratedDatasets.Pattern(12, 12, i));
                }
            }
        }

        var (trained, output) = XNetRunner.Run("train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "1", "--batch-size", "4",
            "--output-dir", Path.Combine(root, "run"), "--cache-dir", cache);
        Assert.AreEqual(0, trained, output);
        var caches = Directory.GetFiles(cache, "*.xcache").ToDictionary(f => f, File.GetLastWriteTimeUtc);
        Assert.AreEqual(2, caches.Count, "one cache per split");
        var (evaluated, evaluation) = XNetRunner.Run("evaluate", "--model", Path.Combine(root, "run", "model.xnet"), "--data", data,
            "--cache-dir", cache);
        Assert.AreEqual(0, evaluated, evaluation);
        CollectionAssert.AreEquivalent(caches, Directory.GetFiles(cache, "*.xcache").ToDictionary(f => f, File.GetLastWriteTimeUtc),
            "evaluate reads the test split's cache that train wrote, unchanged");

        var (refused, error) = XNetRunner.Run("train", "--data", data, "--cache-dir", Path.Combine(data, "train", "cat", "0.bmp"));
        Assert.AreEqual(2, refused, error);
        StringAssert.Contains(error, "--cache-dir");
        StringAssert.Contains(error, "is a file; expected a folder");
    }

    /// <summary>Trains x-resnet-8-2 with <c>xnet train</c> on generated CIFAR-10 (10 training, 5 test images) into root/run.</summary>
    private static (string Data, string Run) TrainTinyCifar10(string root, int epochs, int batchSize)
    {
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        string run = Path.Combine(root, "run");
        var (trained, output) = XNetRunner.Run("train", "--data", data, "--model", "x-resnet-8-2", "--epochs", $"{epochs}",
            "--batch-size", $"{batchSize}", "--output-dir", run);
        Assert.AreEqual(0, trained, output);
        return (data, run);
    }
}
