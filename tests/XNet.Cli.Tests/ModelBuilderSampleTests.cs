using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// The Model Builder-style samples and the file-based script, run as a user runs them, on a tiny generated image folder
/// (90 Fashion-MNIST images of 3 easy classes written as BMP files): samples/XNet.ModelTrainer trains and saves a zip,
/// samples/XNet.ModelConsumer (a project without X-Net or TorchSharp) classifies every image from its path and from its
/// bytes, and samples/scripts/train-image-folder.cs trains a zip the consumer reads too.
/// </summary>
[TestClass]
public sealed class ModelBuilderSampleTests
{
    private static readonly string[] Classes = { "trouser", "bag", "sneaker" };

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void TrainerSampleSavesAZipTheConsumerSampleReadsFromPathsAndBytes()
    {
        string root = TestFolders.Create(TestContext);
        string images = GeneratedDatasets.WriteFashionFolder(Path.Combine(root, "images"), perClass: 30);
        string zip = Path.Combine(root, "model.zip");

        var (trainExit, trainOutput) = Run("dotnet", Sample("XNet.ModelTrainer"), images, zip);
        Assert.AreEqual(0, trainExit, trainOutput);
        StringAssert.Contains(trainOutput, "saved ");

        AssertConsumerClassifies(zip, images, minimumCorrect: 60);
    }

    [TestMethod]
    public void FileBasedScriptSavesAZipTheConsumerSampleReads()
    {
        string root = TestFolders.Create(TestContext);
        string images = GeneratedDatasets.WriteFashionFolder(Path.Combine(root, "images"), perClass: 30);
        string zip = Path.Combine(root, "script.zip");
        string script = Path.Combine(BuiltPrograms.RepositoryRoot, "samples", "scripts", "train-image-folder.cs");

        var (exit, output) = Run("dotnet", "run", script, "--", images, zip);
        Assert.AreEqual(0, exit, output);
        StringAssert.Contains(output, "90 images, 3 classes; saved ");

        AssertConsumerClassifies(zip, images, minimumCorrect: 40);
    }

    private static void AssertConsumerClassifies(string zip, string images, int minimumCorrect)
    {
        string consumer = Sample("XNet.ModelConsumer");
        string consumerFolder = Path.GetDirectoryName(consumer)!;
        Assert.IsFalse(File.Exists(Path.Combine(consumerFolder, "XNet.MLNet.dll")), "the consumer must not carry X-Net");
        Assert.IsFalse(File.Exists(Path.Combine(consumerFolder, "TorchSharp.dll")), "the consumer must not carry TorchSharp");

        var (exit, output) = Run("dotnet", consumer, zip, images);
        Assert.AreEqual(0, exit, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r').Split('\t')).ToArray();
        Assert.HasCount(90, lines, output);
        int correct = 0;
        foreach (var line in lines)
        {
            string truth = Path.GetFileName(Path.GetDirectoryName(line[0]))!;
            Assert.AreEqual(line[1], line[2], $"path and bytes disagree: {string.Join(" | ", line)}");
            CollectionAssert.Contains(Classes, line[1]);
            StringAssert.StartsWith(line[3], line[1] + " ", "PredictAllLabels lists the predicted class first");
            correct += truth == line[1] ? 1 : 0;
        }

        Assert.IsGreaterThanOrEqualTo(minimumCorrect, correct, $"{correct}/90 correct (chance: 30)\n{output}");
    }

    private static string Sample(string project)
    {
        string path = BuiltPrograms.Dll("samples", project);
        Assert.IsTrue(File.Exists(path), $"sample not built: {path}");
        return path;
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var (exitCode, output, errors) = BuiltPrograms.Run(file, args);
        return (exitCode, output + errors);
    }
}
