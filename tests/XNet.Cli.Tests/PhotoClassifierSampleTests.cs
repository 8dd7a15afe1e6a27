using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// samples/XNet.PhotoClassifier, the newcomer's path of docs/own-images.md, run as a user runs it on a tiny generated
/// image folder (150 Fashion-MNIST images of 3 easy classes written as bitmaps): it trains from encoded bytes, evaluates,
/// saves an ML.NET zip and classifies an image from its bytes with the zip loaded in a fresh context.
/// </summary>
[TestClass]
public sealed class PhotoClassifierSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void TrainsFromPhotoBytesAboveChanceSavesAndPredictsFromBytes()
    {
        string root = TestFolders.Create(TestContext);
        string photos = GeneratedDatasets.WriteFashionFolder(Path.Combine(root, "photos"), perClass: 50);

        var (exit, output, errors) = BuiltPrograms.Run("dotnet", BuiltPrograms.Dll("samples", "XNet.PhotoClassifier"), photos, "x-resnet-8-2", "28", "8", "16");

        Assert.AreEqual(0, exit, output + errors);
        var accuracy = output.Split('\n').Single(l => l.StartsWith("test: micro-accuracy ", StringComparison.Ordinal));
        double micro = double.Parse(accuracy.Split(' ')[2].TrimEnd(','), System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsGreaterThan(0.5, micro, $"three classes: chance is 0.33\n{output}");
        Assert.IsTrue(File.Exists(Path.Combine(root, "photo-model.zip")), output);
        var prediction = output.Split('\n').Last(l => l.Contains(".bmp: ", StringComparison.Ordinal));
        CollectionAssert.Contains(new[] { "trouser", "bag", "sneaker" }, prediction.Split(": ")[1].Split(' ')[0], output);
    }
}
