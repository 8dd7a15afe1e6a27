using Microsoft.ML;
using TorchSharp;
using XNet.Architectures;
using XNet.MLNet.Data;
using XNet.MLNet.Training;
using XNet.Tests.Shared;

namespace XNet.MLNet.Tests;

/// <summary>Checkpoints and resume: an interrupted and resumed run equals an uninterrupted one, bit for bit on the CPU.</summary>
[TestClass]
public sealed class ResumeTests
{
    private static readonly MLContext Context = new(seed: 0);
    private static IDataView data = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void LoadData(TestContext _) => data = Context.Data.Cache(TestData.Take(Context, "train", 96));

    // 96 images, a quarter held out: 72 training images in batches of 16 = 5 batches per epoch, 3 epochs = 15 batches.
    private XNetTrainer.Options Options(string run) => new()
    {
        Architecture = "x-resnet-8-2",
        Epoch = 3,
        BatchSize = 16,
        LearningRate = 0.05f,
        Seed = 3,
        Device = "cpu",
        ValidationSetFraction = 0.25f,
        WorkspacePath = run,
    };

    [TestMethod]
    [DataRow(2, DisplayName = "within epoch 1")]
    [DataRow(5, DisplayName = "at the end of epoch 1")]
    [DataRow(8, DisplayName = "within epoch 2")]
    public void InterruptedAndResumedRunEqualsAnUninterruptedOne(int interruptAfterBatch) =>
        AssertResumesExactly(data, Options, interruptAfterBatch, batchesPerEpoch: 5);

    [TestMethod]
    [DataRow("folder", DisplayName = "an image folder's cache")]
    [DataRow("bytes", DisplayName = "encoded bytes from LoadRawImageBytes")]
    public void InterruptedPhotoRunEqualsAnUninterruptedOne(string input)
    {
        // 120 photo-like JPEGs, read at 32x32 with RandomResizedCrop; a quarter held out: 90 images, 6 batches per epoch.
        string photos = Folder("photos");
        PhotoFolder.Write(photos, count: 120, size: 40, classes: 3, seed: 1);
        string train = Path.Combine(photos, "train");
        IDataView photoData;
        if (input == "folder")
        {
            photoData = ImageFolderDataset.Load(Context, train, 32, 32, cacheDirectory: Path.Combine(photos, ".cache")).Data;
        }
        else
        {
            var files = Context.Data.LoadFromEnumerable(Directory.GetFiles(train, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                .Select(f => new PhotoRow { ImagePath = f, Label = Path.GetFileName(Path.GetDirectoryName(f))! }));
            photoData = Context.Transforms.Conversion.MapValueToKey("Label").Append(Context.Transforms.LoadRawImageBytes("Features", null, "ImagePath"))
                .Fit(files).Transform(files);
        }

        XNetTrainer.Options PhotoOptions(string run)
        {
            var options = Options(run);
            options.Augmentation = AugmentationKind.RandomResizedCrop;
            if (input == "bytes")
            {
                (options.ImageHeight, options.ImageWidth) = (32, 32);
            }

            return options;
        }

        AssertResumesExactly(photoData, PhotoOptions, interruptAfterBatch: 8, batchesPerEpoch: 6);
    }

    private void AssertResumesExactly(IDataView trainData, Func<string, XNetTrainer.Options> options, int interruptAfterBatch, int batchesPerEpoch)
    {
        string whole = Folder("whole"), split = Folder("split");
        using var uninterrupted = Context.MulticlassClassification.Trainers.XNet(options(whole)).Fit(trainData);

        using var cancel = new CancellationTokenSource();
        int batches = 0;
        var first = options(split);
        first.CancellationToken = cancel.Token;
        first.ProgressCallback = _ =>
        {
            if (++batches == interruptAfterBatch)
            {
                cancel.Cancel();
            }
        };
        var ex = Assert.ThrowsExactly<OperationCanceledException>(() => Context.MulticlassClassification.Trainers.XNet(first).Fit(trainData));
        StringAssert.Contains(ex.Message, $"after batch {(interruptAfterBatch - 1) % batchesPerEpoch + 1}");
        StringAssert.Contains(ex.Message, "checkpoint");

        // The checkpoint carries the run's options and the run folder: resuming needs nothing else.
        var second = new XNetTrainer.Options { ResumeFrom = split };
        using var resumed = Context.MulticlassClassification.Trainers.XNet(second).Fit(trainData);

        var expected = uninterrupted.Model.Network.state_dict();
        var actual = resumed.Model.Network.state_dict();
        CollectionAssert.AreEqual(expected.Keys.ToArray(), actual.Keys.ToArray());
        foreach (var (name, tensor) in expected)
        {
            Assert.IsTrue(tensor.eq(actual[name]).all().item<bool>(), $"tensor '{name}' differs after resuming at batch {interruptAfterBatch}");
        }

        CollectionAssert.AreEqual(MetricsWithoutTimings(whole), MetricsWithoutTimings(split));
    }

    [TestMethod]
    public void RunCancelledWhileValidatingKeepsTheEpochAndResumesExactly()
    {
        // 40 images in batches of 8: 5 batches an epoch. The stop comes when the first validation pass reads its first image,
        // after epoch 1's last batch: the checkpoint holds the whole epoch's training, and the resumed run only validates it.
        var shape = new ImageShape(1, 8, 8);
        var identity = new ModelIdentity("x-resnet-8-2", shape, ["a", "b"]);
        var options = new XNetTrainer.Options { Epoch = 2, BatchSize = 8, Seed = 3, RandomCropPadding = 1 };
        var train = TrainingEngineTests.TinySet(40, seed: 1);
        var validation = TrainingEngineTests.TinySet(16, seed: 2);
        (TrainingEngine Engine, torch.nn.Module<torch.Tensor, torch.Tensor> Model) NewRun()
        {
            torch.manual_seed(3);
            var model = ModelZoo.Create("x-resnet-8-2", shape, 2, 3);
            return (new TrainingEngine(model, options, torch.CPU), model);
        }

        var (engine, whole) = NewRun();
        var expected = engine.Fit(train, validation, new CheckpointStore(Folder("whole"), identity), resumeFrom: null);

        using var cancel = new CancellationTokenSource();
        var stopping = new ImageSet(shape, new ReadingCallsBack(validation, cancel.Cancel), 2, indices: null, ownsStorage: true);
        string split = Folder("split");
        var (stopped, _) = NewRun();
        var ex = Assert.ThrowsExactly<OperationCanceledException>(
            () => stopped.Fit(train, stopping, new CheckpointStore(split, identity), resumeFrom: null, cancel.Token));
        StringAssert.Contains(ex.Message, "validation of epoch 1");
        string checkpoint = Path.Combine(split, "checkpoint-0000-000005.xckpt");
        StringAssert.Contains(ex.Message, checkpoint);

        var (resumedEngine, resumed) = NewRun();
        var actual = resumedEngine.Fit(train, validation, new CheckpointStore(split, identity), TrainingCheckpoint.Read(checkpoint));

        foreach (var (name, tensor) in whole.state_dict())
        {
            Assert.IsTrue(tensor.eq(resumed.state_dict()[name]).all().item<bool>(), $"tensor '{name}' differs after resuming");
        }

        // Every metric but the timings is the same; the resumed epoch's throughput is still the epoch's, not a division by nothing.
        static object Untimed(EpochMetrics m) => m with { ImagesPerSecond = 0, Elapsed = TimeSpan.Zero };
        CollectionAssert.AreEqual(expected.Select(Untimed).ToArray(), actual.Select(Untimed).ToArray());
        Assert.IsTrue(actual.All(m => double.IsFinite(m.ImagesPerSecond) && m.ImagesPerSecond > 0),
            string.Join(", ", actual.Select(m => m.ImagesPerSecond)));
    }

    /// <summary>An image set's pixels that call back when the first is read.</summary>
    private sealed class ReadingCallsBack(ImageSet images, Action callback) : IImageStorage
    {
        private int read;

        public int Count => images.Count;

        public int Label(int index) => images.Label(index);

        public void CopyImage(int index, Span<float> destination)
        {
            if (Interlocked.Exchange(ref read, 1) == 0)
            {
                callback();
            }

            images.CopyImage(index, destination);
        }
    }

    [TestMethod]
    public void CheckpointsArePrunedAndTheBestIsKeptApart()
    {
        string run = Folder("pruned");
        var options = Options(run);
        options.CheckpointEveryBatches = 2;
        options.CheckpointsToKeep = 2;
        using var model = Context.MulticlassClassification.Trainers.XNet(options).Fit(data);

        var files = Directory.GetFiles(Path.Combine(run, "checkpoints")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(new[] { "best.xckpt", "checkpoint-0002-000004.xckpt", "checkpoint-0003-000000.xckpt" }, files);
        var last = TrainingCheckpoint.Read(Path.Combine(run, "checkpoints", "checkpoint-0003-000000.xckpt"));
        Assert.AreEqual(3, last.Epoch);
        Assert.AreEqual(0, last.Batch);
        Assert.HasCount(3, last.History);
        Assert.AreEqual("x-resnet-8-2", last.Identity.Architecture);
        Assert.AreEqual(3, last.Seed);
    }

    [TestMethod]
    public void DamagedNewestCheckpointIsSkippedForTheOneBefore()
    {
        string run = Folder("damaged");
        using (Context.MulticlassClassification.Trainers.XNet(Options(run)).Fit(data))
        {
        }

        string newest = Path.Combine(run, "checkpoints", "checkpoint-0003-000000.xckpt");
        var bytes = File.ReadAllBytes(newest);
        File.WriteAllBytes(newest, bytes[..(bytes.Length / 2)]);
        var rejected = new List<string>();

        var found = TrainingCheckpoint.FindNewestValid(run, (file, _) => rejected.Add(file));

        Assert.IsNotNull(found);
        Assert.AreEqual(2, found.Epoch, "the epoch-2 checkpoint is the newest valid one");
        CollectionAssert.AreEqual(new[] { newest }, rejected);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(newest));
        StringAssert.Contains(ex.Message, newest);
    }

    [TestMethod]
    public void TamperedWeightsFailTheirChecksum()
    {
        string run = Folder("tampered");
        using (Context.MulticlassClassification.Trainers.XNet(Options(run)).Fit(data))
        {
        }

        string file = Path.Combine(run, "checkpoints", "checkpoint-0002-000000.xckpt");
        using (var zip = System.IO.Compression.ZipFile.Open(file, System.IO.Compression.ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry("model.bin")!;
            byte[] weights;
            using (var stream = entry.Open())
            using (var buffer = new MemoryStream())
            {
                stream.CopyTo(buffer);
                weights = buffer.ToArray();
            }

            weights[^1] ^= 0x40;
            entry.Delete();
            using var replaced = zip.CreateEntry("model.bin").Open();
            replaced.Write(weights);
        }

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => TrainingCheckpoint.Read(file));
        StringAssert.Contains(ex.Message, file);
        StringAssert.Contains(ex.Message, "SHA-256 of 'model.bin'");
    }

    [TestMethod]
    [DataRow("Architecture", DisplayName = "another architecture")]
    [DataRow("Epoch", DisplayName = "another schedule length")]
    [DataRow("Seed", DisplayName = "another seed")]
    public void ResumingWithOtherTrainingSettingsIsRefusedNamingBoth(string option)
    {
        string run = Folder("other-" + option);
        var first = Options(run);
        first.Epoch = 1;
        using (Context.MulticlassClassification.Trainers.XNet(first).Fit(data))
        {
        }

        var other = new XNetTrainer.Options { ResumeFrom = run };
        string recorded;
        switch (option)
        {
            case "Architecture":
                other.Architecture = "resnet-8";
                recorded = "\"x-resnet-8-2\"";
                break;
            case "Epoch":
                other.Epoch = 5;
                recorded = "1";
                break;
            default:
                other.Seed = 4;
                recorded = "3";
                break;
        }

        var ex = Assert.ThrowsExactly<ArgumentException>(() => Context.MulticlassClassification.Trainers.XNet(other).Fit(data));
        Assert.AreEqual(option, ex.ParamName);
        StringAssert.Contains(ex.Message, $"Option {option} = ");
        StringAssert.Contains(ex.Message, $"differs from the run being resumed ({recorded}, recorded in");
    }

    [TestMethod]
    public void ResumingOnOtherTrainingDataIsRefusedNamingBothSizes()
    {
        string run = Folder("other-data");
        var first = Options(run);
        first.Epoch = 1;
        using (Context.MulticlassClassification.Trainers.XNet(first).Fit(data))
        {
        }

        // 80 images instead of 96: 60 trained after the quarter held out, where the checkpoint's run trained 72.
        var fewer = Context.Data.Cache(TestData.Take(Context, "train", 80));
        var resumed = new XNetTrainer.Options { ResumeFrom = run, Epoch = 1 };
        var ex = Assert.ThrowsExactly<ArgumentException>(() => Context.MulticlassClassification.Trainers.XNet(resumed).Fit(fewer));
        StringAssert.Contains(ex.Message, "training on 72 images; this run has 60");
        StringAssert.Contains(ex.Message, Path.Combine(run, "checkpoints"));
    }

    [TestMethod]
    public void ResumingFromAFolderWithoutCheckpointsNamesIt()
    {
        string empty = Folder("empty");
        var options = Options(Folder("unused"));
        options.ResumeFrom = empty;
        var ex = Assert.ThrowsExactly<FileNotFoundException>(() => Context.MulticlassClassification.Trainers.XNet(options).Fit(data));
        StringAssert.Contains(ex.Message, $"ResumeFrom '{empty}' holds no valid X-Net checkpoint");
    }

    /// <summary>metrics.csv without its two timing columns (images/s, elapsed seconds).</summary>
    private static string[] MetricsWithoutTimings(string run) =>
        File.ReadAllLines(Path.Combine(run, "metrics.csv")).Select(line => string.Join(",", line.Split(',')[..^2])).ToArray();

    [TestMethod]
    public void ARunFolderHoldsOneRun()
    {
        string run = Folder("shared");
        var first = Options(run);
        first.Epoch = 2; // checkpoint-0002 has no namesake in the one-epoch run below: it would survive a mix
        using (Context.MulticlassClassification.Trainers.XNet(first).Fit(data))
        {
        }

        // A new run in the folder of an earlier one starts clean: none of the earlier run's checkpoints survive to be resumed.
        var messages = new List<string>();
        var context = new MLContext(seed: 0);
        context.Log += (_, e) => messages.Add(e.Message);
        var second = Options(run);
        second.Epoch = 1;
        second.Seed = 5;
        using (context.MulticlassClassification.Trainers.XNet(second).Fit(data))
        {
        }

        Assert.IsTrue(messages.Any(m => m.Contains("held an earlier run", StringComparison.Ordinal)), "the removal is logged");
        foreach (string file in Directory.GetFiles(Path.Combine(run, RunFolder.CheckpointsFolderName)))
        {
            Assert.AreEqual(5, TrainingCheckpoint.Read(file).Seed, $"{Path.GetFileName(file)} belongs to the new run");
        }

        // Options refused before training leave the earlier run's files where they are.
        var before = Directory.GetFiles(run, "*", SearchOption.AllDirectories).Order().ToArray();
        var refused = Options(run);
        (refused.KeepBestValidationModel, refused.ValidationSetFraction) = (true, null);
        var keepBest = Assert.ThrowsExactly<ArgumentException>(() => Context.MulticlassClassification.Trainers.XNet(refused).Fit(data));
        StringAssert.Contains(keepBest.Message, "Option KeepBestValidationModel = true needs a validation set");
        CollectionAssert.AreEqual(before, Directory.GetFiles(run, "*", SearchOption.AllDirectories).Order().ToArray());

        // While a run holds the folder, a second one is refused before it writes anything.
        using (RunFolder.Open(run, resuming: true, _ => { }))
        {
            var third = Options(run);
            third.Epoch = 1;
            var ex = Assert.ThrowsExactly<IOException>(() => Context.MulticlassClassification.Trainers.XNet(third).Fit(data));
            StringAssert.Contains(ex.Message, $"Run folder '{run}' is in use by another training run");
        }
    }

    private string Folder(string name)
    {
        string path = Path.Combine(Path.GetTempPath(), "xnet-resume-tests", TestContext.TestName!, Guid.NewGuid().ToString("N"), name);
        Directory.CreateDirectory(path);
        return path;
    }

    public sealed class PhotoRow
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }
}
