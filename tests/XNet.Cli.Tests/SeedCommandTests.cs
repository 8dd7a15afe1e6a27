using System.Text.RegularExpressions;
using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// The paper's README's three training commands, as docs/cli.md gives them for <c>xnet</c>, each run for one epoch on
/// generated data of its format: CIFAR-10 binary, CIFAR-100 binary and an ImageNet-style image folder.
/// </summary>
[TestClass]
public sealed class SeedCommandTests
{
    private static readonly string CliDoc = Path.Combine(AppContext.BaseDirectory, "docs", "cli.md");

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void XVggOnCifar10TrainsForAnEpoch()
    {
        string root = TestFolders.Create(TestContext);
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 4, testRecords: 6);
        AssertTrainsOneEpoch("x-vgg16 cifar-10", data, root, expectedClasses: 10);
    }

    [TestMethod]
    public void XDenseNetBcOnCifar100TrainsForAnEpoch()
    {
        string root = TestFolders.Create(TestContext);
        var (data, _) = GeneratedDatasets.WriteCifar100(root, trainRecords: 12, testRecords: 6);
        AssertTrainsOneEpoch("x-densenet-bc-40-48-2 cifar-100", data, root, expectedClasses: 100);
    }

    [TestMethod]
    public void XResNet34OnAnImageFolderTrainsForAnEpoch()
    {
        string root = TestFolders.Create(TestContext);
        string data = Path.Combine(root, "imagenet");
        foreach (var (split, count) in new[] { ("train", 3), ("val", 2) })
        {
            foreach (string label in new[] { "n01440764", "n01443537" })
            {
                for (int i = 0; i < count; i++)
                {
                    GeneratedDatasets.WriteBmp(Path.Combine(data, split, label, $"{i}.bmp"), GeneratedDatasets.Pattern(40, 48, i));
                }
            }
        }

        AssertTrainsOneEpoch("x-resnet-34-2 imagenet", data, root, expectedClasses: 2);
    }

    [TestMethod]
    public void EveryDocumentedSeedCommandIsCovered() =>
        CollectionAssert.AreEquivalent(
            new[] { "x-vgg16 cifar-10", "x-densenet-bc-40-48-2 cifar-100", "x-resnet-34-2 imagenet" },
            SeedCommands().Keys.ToArray());

    private void AssertTrainsOneEpoch(string command, string data, string root, int expectedClasses)
    {
        string run = Path.Combine(root, "run");
        var args = SeedCommands()[command];
        Assert.AreEqual("train", args[0], command);
        Replace(args, "--data", data);
        Replace(args, "--epochs", "1");
        Replace(args, "--output-dir", run);

        var (exitCode, output) = XNetRunner.Run(args);
        TestContext.WriteLine(output);

        Assert.AreEqual(0, exitCode, output);
        StringAssert.Contains(output, $"{expectedClasses} classes");
        StringAssert.Contains(output, "Test metrics (ML.NET)");
        Assert.IsTrue(File.Exists(Path.Combine(run, "model.xnet")));
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.csv"));
        Assert.HasCount(2, metrics, "a header and one epoch");
        var png = File.ReadAllBytes(Path.Combine(run, "training-curves.png"));
        CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }

    /// <summary>The <c>xnet train</c> argument lists under each <c>&lt;!-- seed-command: NAME --&gt;</c> marker of docs/cli.md.</summary>
    private static Dictionary<string, string[]> SeedCommands()
    {
        string text = File.ReadAllText(CliDoc);
        var blocks = Regex.Matches(text, @"<!-- seed-command: (?<name>[^>]+?) -->\s*```sh\n(?<command>.*?)```", RegexOptions.Singleline);
        return blocks.ToDictionary(
            m => m.Groups["name"].Value,
            m => m.Groups["command"].Value.Replace("\\\n", " ").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Skip(1).ToArray());
    }

    private static void Replace(string[] args, string option, string value)
    {
        int index = Array.IndexOf(args, option);
        Assert.IsGreaterThanOrEqualTo(0, index, $"the documented command has {option}");
        args[index + 1] = value;
    }
}
