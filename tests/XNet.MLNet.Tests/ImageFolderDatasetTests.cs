using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.Architectures;
using XNet.MLNet.Data;
using XNet.Tests.Shared;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class ImageFolderDatasetTests
{
    private readonly MLContext context = new(seed: 0);
    private string root = null!;

    [TestInitialize]
    public void CreateRoot() => root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"xnet-folder-{Guid.NewGuid():N}")).FullName;

    [TestCleanup]
    public void DeleteRoot()
    {
        Directory.Delete(root, recursive: true);

        // The caches of this test's folders (named after the folder) in the shared default cache directory.
        string caches = ImageFolderCache.DefaultDirectory;
        foreach (string cache in Directory.Exists(caches) ? Directory.GetFiles(caches, $"{Path.GetFileName(root)}-*") : [])
        {
            File.Delete(cache);
        }
    }

    [TestMethod]
    public void RgbBitmapsRoundTripExactlyWithOrdinalClassOrder()
    {
        // Ordinal order puts "Zebra" before "ant"; files sort by path, subfolders included.
        var a = GeneratedDatasets.WriteBmp(Path.Combine(root, "ant", "b.bmp"), GeneratedDatasets.Pattern(32, 32, 1));
        var b = GeneratedDatasets.WriteBmp(Path.Combine(root, "ant", "a.BMP"), GeneratedDatasets.Pattern(32, 32, 2));
        var c = GeneratedDatasets.WriteBmp(Path.Combine(root, "Zebra", "nested", "z.bmp"), GeneratedDatasets.Pattern(32, 32, 3));
        File.WriteAllText(Path.Combine(root, "Zebra", "notes.txt"), "not an image");
        Directory.CreateDirectory(Path.Combine(root, ".hidden"));

        var loaded = ImageFolderDataset.Load(context, root, 32, 32);

        CollectionAssert.AreEqual(new[] { "Zebra", "ant" }, loaded.ClassNames.ToArray());
        Assert.AreEqual(new ImageShape(3, 32, 32), loaded.Shape);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3, 32, 32), loaded.Data.Schema["Features"].Type);
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 2), loaded.Data.Schema["Label"].Type);
        VBuffer<ReadOnlyMemory<char>> names = default;
        loaded.Data.Schema["Label"].GetKeyValues(ref names);
        CollectionAssert.AreEqual(new[] { "Zebra", "ant" }, names.DenseValues().Select(n => n.ToString()).ToArray());
        Assert.AreEqual(0, loaded.SkippedFiles.Count);
        CollectionAssert.AreEqual(
            new[] { Path.Combine(root, "Zebra", "nested", "z.bmp"), Path.Combine(root, "ant", "a.BMP"), Path.Combine(root, "ant", "b.bmp") },
            loaded.Files.ToArray());

        CollectionAssert.AreEqual(new uint[] { 1, 2, 2 }, loaded.Data.GetColumn<uint>("Label").ToArray());
        var features = loaded.Data.GetColumn<float[]>("Features").ToArray();
        CollectionAssert.AreEqual(GeneratedDatasets.Planar(c), features[0]);
        CollectionAssert.AreEqual(GeneratedDatasets.Planar(b), features[1]);
        CollectionAssert.AreEqual(GeneratedDatasets.Planar(a), features[2]);
    }

    [TestMethod]
    public void PngFilesLoadAsGrayscaleOrRgb()
    {
        string images = Path.Combine(AppContext.BaseDirectory, "data", "images");
        Directory.CreateDirectory(Path.Combine(root, "boot"));
        Directory.CreateDirectory(Path.Combine(root, "other"));
        File.Copy(Path.Combine(images, "ankle-boot.png"), Path.Combine(root, "boot", "ankle-boot.png"));
        File.Copy(Path.Combine(images, "sneaker.png"), Path.Combine(root, "other", "sneaker.png"));
        File.Copy(Path.Combine(images, "trouser.png"), Path.Combine(root, "other", "trouser.png"));

        var gray = ImageFolderDataset.Load(context, root, 28, 28, channels: 1);
        var rgb = ImageFolderDataset.Load(context, root, 28, 28, channels: 3);

        Assert.AreEqual(new ImageShape(1, 28, 28), gray.Shape);
        var grayPixels = gray.Data.GetColumn<float[]>("Features").ToArray();
        var rgbPixels = rgb.Data.GetColumn<float[]>("Features").ToArray();
        Assert.HasCount(3, grayPixels);
        for (int i = 0; i < 3; i++)
        {
            Assert.IsTrue(grayPixels[i].Max() > 100 && grayPixels[i].All(p => p >= 0 && p <= 255), "raw 0-255 values");
            // A grayscale PNG has R = G = B; the grayscale conversion keeps the value (weights sum to 1) up to rounding.
            for (int p = 0; p < 28 * 28; p++)
            {
                Assert.AreEqual(rgbPixels[i][p], rgbPixels[i][28 * 28 + p]);
                Assert.AreEqual(rgbPixels[i][p], grayPixels[i][p], 1.0);
            }
        }
    }

    [TestMethod]
    public void ShorterSideCenterCropKeepsTheCentreAndStretchTheWholeImage()
    {
        // 80 wide x 48 high: red frame, green inside the window that Resize(48) + CenterCrop(32) keeps (x 24..55, y 8..39).
        var pixels = new byte[48, 80, 3];
        for (int y = 0; y < 48; y++)
        {
            for (int x = 0; x < 80; x++)
            {
                bool inside = x >= 24 && x < 56 && y >= 8 && y < 40;
                pixels[y, x, inside ? 1 : 0] = 255;
            }
        }

        GeneratedDatasets.WriteBmp(Path.Combine(root, "a", "wide.bmp"), pixels);
        GeneratedDatasets.WriteBmp(Path.Combine(root, "b", "wide.bmp"), pixels);

        var cropped = ImageFolderDataset.Load(context, root, 32, 32, resize: ImageFolderResize.ShorterSideCenterCrop, shorterSide: 48)
            .Data.GetColumn<float[]>("Features").First();
        var stretched = ImageFolderDataset.Load(context, root, 32, 32).Data.GetColumn<float[]>("Features").First();

        const int plane = 32 * 32;
        // Only the filter's fringe of the red frame may bleed into the crop's border.
        Assert.IsTrue(cropped.Take(plane).All(r => r < 64), $"red in crop: max {cropped.Take(plane).Max()}");
        Assert.IsTrue(cropped.Skip(plane).Take(plane).Average() > 230, "the crop is the green centre");
        Assert.AreEqual(255f, stretched[0], "stretching keeps the red frame at (0, 0)");
        Assert.AreEqual(0f, stretched[plane + 16 * 32], "stretching: row 16, column 0 is red");
        Assert.AreEqual(255f, stretched[plane + 16 * 32 + 16], "and the middle green");
    }

    [TestMethod]
    public void DefaultShorterSideIsEightSeventhsOfTheCrop()
    {
        GeneratedDatasets.WriteBmp(Path.Combine(root, "a", "x.bmp"), GeneratedDatasets.Pattern(40, 40, 1));
        GeneratedDatasets.WriteBmp(Path.Combine(root, "b", "x.bmp"), GeneratedDatasets.Pattern(40, 40, 2));

        var loaded = ImageFolderDataset.Load(context, root, 28, 28, resize: ImageFolderResize.ShorterSideCenterCrop);

        Assert.AreEqual(new ImageShape(3, 28, 28), loaded.Shape); // loaded at 32 (= 28 * 8 / 7), cut to 28
        var ex = Assert.ThrowsExactly<ArgumentException>(() =>
            ImageFolderDataset.Load(context, root, 28, 28, resize: ImageFolderResize.ShorterSideCenterCrop, shorterSide: 20));
        StringAssert.Contains(ex.Message, "shorter side 20");
    }

    [TestMethod]
    public void MissingRootIsNamed()
    {
        string missing = Path.Combine(root, "missing");
        var ex = Assert.ThrowsExactly<DirectoryNotFoundException>(() => ImageFolderDataset.Load(context, missing, 32, 32));
        StringAssert.Contains(ex.Message, missing);
    }

    [TestMethod]
    public void FolderWithoutClassSubfoldersIsRefused()
    {
        GeneratedDatasets.WriteBmp(Path.Combine(root, "loose.bmp"), GeneratedDatasets.Pattern(8, 8, 1));
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Load(context, root, 32, 32));
        StringAssert.Contains(ex.Message, root);
        StringAssert.Contains(ex.Message, "no class subfolders");
    }

    [TestMethod]
    public void SingleClassIsRefusedByName()
    {
        GeneratedDatasets.WriteBmp(Path.Combine(root, "cat", "1.bmp"), GeneratedDatasets.Pattern(8, 8, 1));
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Load(context, root, 32, 32));
        StringAssert.Contains(ex.Message, "needs at least 2 classes, found 1: 'cat'");
        StringAssert.Contains(ex.Message, root);
    }

    [TestMethod]
    public void EmptyClassFolderIsNamed()
    {
        GeneratedDatasets.WriteBmp(Path.Combine(root, "cat", "1.bmp"), GeneratedDatasets.Pattern(8, 8, 1));
        string dog = Directory.CreateDirectory(Path.Combine(root, "dog")).FullName;
        File.WriteAllText(Path.Combine(dog, "readme.txt"), "no images here");

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Load(context, root, 32, 32));
        StringAssert.Contains(ex.Message, $"Class folder '{dog}' holds no image files");
    }

    [TestMethod]
    public void CorruptImageIsNamedOrSkipped()
    {
        GeneratedDatasets.WriteBmp(Path.Combine(root, "cat", "1.bmp"), GeneratedDatasets.Pattern(32, 32, 1));
        GeneratedDatasets.WriteBmp(Path.Combine(root, "dog", "1.bmp"), GeneratedDatasets.Pattern(32, 32, 2));
        GeneratedDatasets.WriteBmp(Path.Combine(root, "dog", "3.bmp"), GeneratedDatasets.Pattern(32, 32, 3));
        string corrupt = Path.Combine(root, "dog", "2.png");
        File.WriteAllBytes(corrupt, new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3, 4, 5, 6, 7 });

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => ImageFolderDataset.Load(context, root, 32, 32));
        StringAssert.Contains(ex.Message, $"Image file '{corrupt}' could not be read as an image");
        StringAssert.Contains(ex.Message, "skipUnreadable");

        var loaded = ImageFolderDataset.Load(context, root, 32, 32, skipUnreadable: true);
        Assert.AreEqual(1, loaded.SkippedFiles.Count);
        CollectionAssert.AreEqual(new[] { corrupt }, loaded.SkippedFiles.ToArray());
        CollectionAssert.AreEqual(new uint[] { 1, 2, 2 }, loaded.Data.GetColumn<uint>("Label").ToArray());
        var features = loaded.Data.GetColumn<float[]>("Features").ToArray();
        CollectionAssert.AreEqual(GeneratedDatasets.Planar(GeneratedDatasets.Pattern(32, 32, 3)), features[2], "rows after the skipped file keep their own pixels");
    }

    [TestMethod]
    public void DecodedImagesAreCachedReusedAndRebuiltWhenTheFolderChanges()
    {
        string cache = Path.Combine(root, ".cache");
        string changed = Path.Combine(root, "cat", "1.bmp");
        GeneratedDatasets.WriteBmp(changed, GeneratedDatasets.Pattern(32, 32, 1));
        GeneratedDatasets.WriteBmp(Path.Combine(root, "dog", "1.bmp"), GeneratedDatasets.Pattern(32, 32, 2));
        var reports = new List<ImageFolderProgress>();
        var progress = new Progress(reports.Add);
        ImageFolderData Load() => ImageFolderDataset.Load(context, root, 16, 16, cacheDirectory: cache, progress: progress);

        var first = Load().Data.GetColumn<float[]>("Features").ToArray();
        Assert.IsFalse(reports[^1].Reused);
        Assert.AreEqual((2, 2), (reports[^1].Done, reports[^1].Total));
        string built = Directory.GetFiles(cache).Single();

        var again = Load().Data.GetColumn<float[]>("Features").ToArray();
        Assert.IsTrue(reports[^1].Reused, "the same folder at the same size reads its cache");
        CollectionAssert.AreEqual(first[0], again[0]);
        Assert.AreEqual(built, Directory.GetFiles(cache).Single());

        GeneratedDatasets.WriteBmp(changed, GeneratedDatasets.Pattern(32, 32, 7));
        File.SetLastWriteTimeUtc(changed, DateTime.UtcNow.AddMinutes(1));
        var rebuilt = Load().Data.GetColumn<float[]>("Features").ToArray();
        Assert.IsFalse(reports[^1].Reused, "a changed file changes the cache's key");
        CollectionAssert.AreNotEqual(first[0], rebuilt[0]);
        Assert.AreNotEqual(built, Directory.GetFiles(cache).Single(), "the stale cache of the folder is deleted");

        File.WriteAllBytes(Directory.GetFiles(cache).Single(), new byte[10]);
        var repaired = Load().Data.GetColumn<float[]>("Features").ToArray();
        Assert.IsFalse(reports[^1].Reused, "a damaged cache is rebuilt, not read");
        CollectionAssert.AreEqual(rebuilt[0], repaired[0]);
    }

    /// <summary>Reports synchronously (System.Progress posts to the thread pool).</summary>
    private sealed class Progress(Action<ImageFolderProgress> report) : IProgress<ImageFolderProgress>
    {
        public void Report(ImageFolderProgress value) => report(value);
    }

    [TestMethod]
    public void ImageDatasetsPicksTheSplitFolderAndReportsImageNetStatistics()
    {
        foreach (var (split, count) in new[] { ("train", 2), ("val", 1) })
        {
            foreach (string cls in new[] { "n01", "n02" })
            {
                for (int i = 0; i < count; i++)
                {
                    GeneratedDatasets.WriteBmp(Path.Combine(root, split, cls, $"{i}.bmp"), GeneratedDatasets.Pattern(40, 40, i));
                }
            }
        }

        var options = new ImageFolderOptions { Height = 32, Width = 32 };
        var train = ImageDatasets.Load(context, root, "train", options);
        var test = ImageDatasets.Load(context, root, "test", options);
        var direct = ImageDatasets.Load(context, Path.Combine(root, "train"), "test", options with { Channels = 1 });

        Assert.AreEqual(ImageDatasetFormat.ImageFolder, train.Format);
        Assert.AreEqual(4L, train.Data.GetRowCount());
        Assert.AreEqual(2L, test.Data.GetRowCount());
        CollectionAssert.AreEqual(new[] { "n01", "n02" }, test.ClassNames.ToArray());
        Assert.AreEqual(new ImageShape(3, 32, 32), train.Shape);
        Assert.AreEqual(XNet.MLNet.Training.AugmentationKind.RandomResizedCrop, train.Augmentation);
        Assert.AreEqual(0.485f * 255, train.Mean![0], 1e-4);
        Assert.AreEqual(0.225f * 255, train.Std![2], 1e-4);
        Assert.AreEqual(4L, direct.Data.GetRowCount(), "class folders directly: the whole folder for either split");
        Assert.AreEqual(new ImageShape(1, 32, 32), direct.Shape);
        Assert.IsNull(direct.Mean, "no seed statistics for grayscale folders");
    }

    [TestMethod]
    public void ImageDatasetsTakesValidationFoldersAndRefusesATrainFolderAlone()
    {
        void Write(string folder, int count)
        {
            foreach (string cls in new[] { "cat", "dog" })
            {
                for (int i = 0; i < count; i++)
                {
                    GeneratedDatasets.WriteBmp(Path.Combine(root, folder, cls, $"{i}.bmp"), GeneratedDatasets.Pattern(40, 40, i));
                }
            }
        }

        var options = new ImageFolderOptions { Height = 32, Width = 32 };
        Write("train", 3);
        var alone = Assert.ThrowsExactly<InvalidDataException>(() => ImageDatasets.Load(context, root, "train", options));
        StringAssert.Contains(alone.Message, $"Image folder '{root}' has a split folder 'train'");
        StringAssert.Contains(alone.Message, Path.Combine(root, "train"));

        Write("Validation", 1); // Keras's name for the held-out split, in any letter case
        Assert.AreEqual(6L, ImageDatasets.Load(context, root, "train", options).Data.GetRowCount());
        var test = ImageDatasets.Load(context, root, "test", options);
        Assert.AreEqual(2L, test.Data.GetRowCount());
        CollectionAssert.AreEqual(new[] { "cat", "dog" }, test.ClassNames.ToArray());

        // A class that is named train holds images, not class folders: it stays a class.
        string vehicles = Path.Combine(root, "vehicles");
        foreach (string cls in new[] { "bus", "train" })
        {
            GeneratedDatasets.WriteBmp(Path.Combine(vehicles, cls, "0.bmp"), GeneratedDatasets.Pattern(40, 40, 0));
        }

        CollectionAssert.AreEqual(new[] { "bus", "train" }, ImageDatasets.Load(context, vehicles, "train", options).ClassNames.ToArray());
    }

    [TestMethod]
    public void ImageDatasetsLoadsIdxFolders()
    {
        var loaded = ImageDatasets.Load(context, TestData.Directory, "test");
        var reference = TestData.Load(context, "t10k");

        Assert.AreEqual(ImageDatasetFormat.Idx, loaded.Format);
        Assert.AreEqual(new ImageShape(1, 28, 28), loaded.Shape);
        Assert.AreEqual(2, loaded.RandomCropPadding);
        Assert.IsNull(loaded.Mean);
        Assert.AreEqual(reference.GetRowCount(), loaded.Data.GetRowCount());
        CollectionAssert.AreEqual(reference.GetColumn<uint>("Label").ToArray(), loaded.Data.GetColumn<uint>("Label").ToArray());
        CollectionAssert.AreEqual(FashionMnist.ClassNames.ToArray(), loaded.ClassNames.ToArray());
    }

    [TestMethod]
    public void ImageDatasetsRefusesUnknownFoldersAndSplits()
    {
        string missing = Path.Combine(root, "missing");
        StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => ImageDatasets.Load(context, missing, "train")).Message, missing);
        var unknown = Assert.ThrowsExactly<DirectoryNotFoundException>(() => ImageDatasets.Load(context, root, "train"));
        StringAssert.Contains(unknown.Message, "is not a dataset X-Net recognises");
        var split = Assert.ThrowsExactly<ArgumentException>(() => ImageDatasets.Load(context, root, "holdout"));
        StringAssert.Contains(split.Message, "'holdout'");
    }

    [TestMethod]
    public void TrainsTwoBatchesThroughTheTrainer()
    {
        for (int i = 0; i < 8; i++)
        {
            GeneratedDatasets.WriteBmp(Path.Combine(root, "cat", $"{i}.bmp"), GeneratedDatasets.Pattern(32, 32, i));
            GeneratedDatasets.WriteBmp(Path.Combine(root, "dog", $"{i}.bmp"), GeneratedDatasets.Pattern(32, 32, 100 + i));
        }

        var train = ImageFolderDataset.Load(context, root, 32, 32).Data;
        var options = TestData.SmallOptions();
        options.BatchSize = 8;

        using var model = context.MulticlassClassification.Trainers.XNet(options).Fit(train);
        var predicted = context.Transforms.Conversion.MapKeyToValue("Name", "PredictedLabel").Fit(model.Transform(train))
            .Transform(model.Transform(train)).GetColumn<string>("Name").ToArray();

        Assert.AreEqual(new ImageShape(3, 32, 32), model.Model.InputShape);
        CollectionAssert.AreEqual(new[] { "cat", "dog" }, model.Model.ClassNames.ToArray());
        Assert.HasCount(16, predicted);
        Assert.IsTrue(predicted.All(p => p is "cat" or "dog"), string.Join(", ", predicted));
    }
}
