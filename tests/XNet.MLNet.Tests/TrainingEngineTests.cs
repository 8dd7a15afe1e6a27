using Microsoft.ML;
using TorchSharp;
using XNet.MLNet;
using XNet.Architectures;
using XNet.MLNet.Training;
using static TorchSharp.torch;

namespace XNet.MLNet.Tests;

[TestClass]
public sealed class TrainingEngineTests
{
    [TestMethod]
    public void CosineWarmsUpLinearlyThenDecaysToTheMinimum()
    {
        var schedule = LearningRateSchedule.Cosine(warmupEpochs: 1, minimum: 0.001);
        Assert.AreEqual(0.1 * 1 / 10, schedule.At(0.1, 0, 0, 10, 5), 1e-12);
        Assert.AreEqual(0.1, schedule.At(0.1, 0, 9, 10, 5), 1e-12);
        Assert.AreEqual(0.1, schedule.At(0.1, 1, 0, 10, 5), 1e-12);
        Assert.AreEqual(0.001 + 0.099 * 0.5, schedule.At(0.1, 3, 0, 10, 5), 1e-12);
        Assert.AreEqual(0.001, schedule.At(0.1, 5, 0, 10, 5), 1e-12);
    }

    [TestMethod]
    public void StepScheduleMultipliesPerIntervalAndClamps()
    {
        var schedule = LearningRateSchedule.Step(interval: 30, multiplier: 0.5, minimum: 0.0005);
        Assert.AreEqual(0.05, schedule.At(0.05, 29, 0, 1, 300), 1e-12);
        Assert.AreEqual(0.025, schedule.At(0.05, 30, 0, 1, 300), 1e-12);
        Assert.AreEqual(0.05 / 64, schedule.At(0.05, 180, 0, 1, 300), 1e-12);
        Assert.AreEqual(0.0005, schedule.At(0.05, 210, 0, 1, 300), 1e-12);
    }

    [TestMethod]
    public void CropAtTheCentreOffsetIsIdentityAndFlipMirrors()
    {
        using var scope = NewDisposeScope();
        var images = arange(2 * 3 * 4 * 5, dtype: ScalarType.Float32).view(2, 3, 4, 5);
        long[] centre = [2, 2];
        var same = Augmentation.CropAndFlip(images, 2, centre, centre, [false, false]);
        var mirrored = Augmentation.CropAndFlip(images, 2, centre, centre, [false, true]);

        Assert.IsTrue(same.eq(images).all().item<bool>());
        Assert.IsTrue(mirrored[0].eq(images[0]).all().item<bool>());
        Assert.IsTrue(mirrored[1].eq(images[1].flip(2)).all().item<bool>());
    }

    [TestMethod]
    public void CropShiftsAndZeroPads()
    {
        using var scope = NewDisposeScope();
        var images = ones(1, 1, 3, 3);
        var shifted = Augmentation.CropAndFlip(images, 1, [0], [2], [false]);

        // Row offset 0 reads the top padding row; column offset 2 reads the right padding column.
        var expected = tensor(new float[] { 0, 0, 0, 1, 1, 0, 1, 1, 0 }).view(1, 1, 3, 3);
        Assert.IsTrue(shifted.eq(expected).all().item<bool>(), shifted.ToString(TorchSharp.TensorStringStyle.Julia));
    }

    [TestMethod]
    public void SameSeedTrainsToTheSameWeights()
    {
        var a = TrainTinyModel(seed: 4);
        var b = TrainTinyModel(seed: 4);
        var c = TrainTinyModel(seed: 5);

        CollectionAssert.AreEqual(a, b);
        CollectionAssert.AreNotEqual(a, c);
    }

    [TestMethod]
    public void CancellationStopsTraining()
    {
        using var model = ModelZoo.Create("x-resnet-8-2", new ImageShape(1, 8, 8), 2, 0);
        var engine = new TrainingEngine(model, new XNetTrainer.Options { Epoch = 5, BatchSize = 4 }, CPU);
        using var stop = new CancellationTokenSource();
        int batches = 0;
        engine.BatchCompleted += _ =>
        {
            if (++batches == 2)
            {
                stop.Cancel();
            }
        };

        Assert.ThrowsExactly<OperationCanceledException>(() => engine.Fit(TinySet(32, seed: 1), null, stop.Token));
        Assert.AreEqual(2, batches);
    }

    [TestMethod]
    public void EpochMetricsReportValidationAndSchedule()
    {
        using var model = ModelZoo.Create("resnet-8", new ImageShape(1, 8, 8), 2, 0);
        var options = new XNetTrainer.Options { Epoch = 2, BatchSize = 8, LearningRateSchedule = LearningRateSchedule.Constant, LearningRate = 0.01f };
        var history = new TrainingEngine(model, options, CPU).Fit(TinySet(24, 1), TinySet(10, 2));

        Assert.HasCount(2, history);
        Assert.AreEqual(2, history[1].Epoch);
        Assert.AreEqual(0.01f, history[1].LearningRate, 1e-12);
        Assert.IsNotNull(history[1].ValidationAccuracy);
        Assert.AreEqual(1.0, history[1].ValidationTop5Accuracy, "two classes: top-5 is top-2, always right");
        Assert.AreEqual(1.0, history[1].TrainTop5Accuracy);
        Assert.AreEqual(history.Max(m => m.ValidationAccuracy), history.BestValidationAccuracy);
        Assert.AreEqual(2, history.KeptEpoch, "the final epoch's model by default");
        Assert.IsTrue(history.All(m => m.TrainLoss > 0 && m.ImagesPerSecond > 0));
    }

    [TestMethod]
    public void SplitKeepsEveryImageOnce()
    {
        var set = TinySet(20, 3);
        var (kept, held) = set.Split(0.25, seed: 1);

        Assert.AreEqual(15, kept.Count);
        Assert.AreEqual(5, held.Count);
        Assert.ThrowsExactly<ArgumentException>(() => set.Split(1.0, 1));
    }

    [TestMethod]
    public void WholeNumberPixelsGoToAFileOfBytesAndOtherValuesStayAsGiven()
    {
        var ml = new MLContext(seed: 0);
        IDataView Keyed(float offset)
        {
            var rows = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new TestData.PixelRow
            {
                Label = i % 2 == 0 ? "a" : "b",
                Features = Enumerable.Range(0, 16).Select(p => (float)(i * 16 + p) + (i == 4 ? offset : 0)).ToArray(),
            }));
            return ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        }

        foreach (float offset in new[] { 0f, 0.5f }) // 0.5: row 4 is not whole, so the rows before it move back into memory
        {
            var shape = new ImageShape(1, 4, 4);
            using var set = Data.DataViewImages.Read(Keyed(offset), "Features", "Label", shape, 2, "training", default).Images;
            var image = new float[16];
            for (int i = 0; i < set.Count; i++)
            {
                set.CopyImage(i, image);
                CollectionAssert.AreEqual(Enumerable.Range(0, 16).Select(p => (float)(i * 16 + p) + (i == 4 ? offset : 0)).ToArray(), image,
                    $"offset {offset}, image {i}");
                Assert.AreEqual(i % 2, set.Label(i));
            }

            var (kept, held) = set.Split(0.5, seed: 2);
            var all = new List<float>();
            foreach (var part in new[] { kept, held })
            {
                for (int i = 0; i < part.Count; i++)
                {
                    part.CopyImage(i, image);
                    all.Add(image[0]);
                }
            }

            CollectionAssert.AreEquivalent(Enumerable.Range(0, 6).Select(i => i * 16f + (i == 4 ? offset : 0)).ToArray(), all.ToArray());
        }

        using var storage = new ByteFileStorage(2);
        Assert.IsTrue(storage.TryAppend(new float[] { 0, 255 }, 1));
        Assert.IsFalse(storage.TryAppend(new float[] { 0, 256 }, 0), "beyond a byte");
        Assert.IsFalse(storage.TryAppend(new float[] { -1, 0 }, 0), "negative");
        Assert.IsFalse(storage.TryAppend(new float[] { float.NaN, 0 }, 0), "not a number");
        Assert.AreEqual(1, storage.Count);
    }

    [TestMethod]
    public void BatchLoaderDeliversEveryImageOnceFromRecycledBuffersWithoutAllocatingPerBatch()
    {
        // 390 images of 1x32x32 in batches of 16: 24 full batches and a short one of 6.
        const int count = 390, batchSize = 16, size = 32 * 32;
        var pixels = new float[count * size];
        for (int i = 0; i < count; i++)
        {
            pixels.AsSpan(i * size, size).Fill(i);
        }

        var images = new ImageSet(new ImageShape(1, 32, 32), pixels, Enumerable.Range(0, count).Select(i => i % 3).ToArray(), 3);
        var plan = new AugmentationPlan(AugmentationKind.PadCropFlip, 2, true, (1, 1), (1, 1));
        using var loader = new BatchLoader(images, batchSize, shuffleSeed: 5, plan, CancellationToken.None);
        var seen = new List<int>(count);
        var counts = new List<int>(32);
        var buffers = new HashSet<float[]>(ReferenceEqualityComparer.Instance);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        foreach (var batch in loader.Batches())
        {
            buffers.Add(batch.Pixels);
            counts.Add(batch.Count);
            for (int i = 0; i < batch.Count; i++)
            {
                int image = (int)batch.Pixels[i * size];
                Assert.IsTrue(batch.Pixels.AsSpan(i * size, size).IndexOfAnyExcept(image) < 0, $"image {image} is mixed with another");
                Assert.AreEqual(image % 3, batch.Labels[i]);
                seen.Add(image);
            }
        }

        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        CollectionAssert.AreEquivalent(Enumerable.Range(0, count).ToArray(), seen, "every image exactly once");
        CollectionAssert.AreEqual(Enumerable.Repeat(batchSize, 24).Append(6).ToArray(), counts.ToArray(), "the last batch is the short one");
        Assert.IsLessThanOrEqualTo(4, buffers.Count, "the loader recycles its buffers");

        // 25 batches of 64 KB of pixels each would be 1.6 MB; what is left is the consumer's own bookkeeping.
        Assert.IsLessThan(256 * 1024, allocated, $"{allocated:N0} bytes allocated while loading 25 batches");
    }

    [TestMethod]
    public void ChannelStatisticsArePerChannel()
    {
        var pixels = new float[] { 0, 2, 10, 10, 4, 6, 10, 10 }; // two 2x1x2 images: channel 0 = {0,2,4,6}, channel 1 = 10s
        var set = new ImageSet(new ImageShape(2, 1, 2), pixels, new[] { 0, 1 }, 2);
        var (mean, std) = set.ChannelStatistics();

        CollectionAssert.AreEqual(new[] { 3f, 10f }, mean);
        Assert.AreEqual(Math.Sqrt(5), std[0], 1e-6);
        Assert.AreEqual(1e-6f, std[1], "a constant channel is kept finite");
    }

    [TestMethod]
    [DataRow(true, DisplayName = "on: stops and restores the best epoch")]
    [DataRow(false, DisplayName = "off: trains every epoch")]
    public void EarlyStoppingStopsAStalledRunAndRestoresTheBestEpoch(bool on)
    {
        // A learning rate of 1e-7 leaves the validation metric where it is; no change reaches MinDelta = 0.5.
        using var model = ModelZoo.Create("resnet-8", new ImageShape(1, 8, 8), 2, 0);
        var options = new XNetTrainer.Options
        {
            Epoch = 6,
            BatchSize = 8,
            LearningRateSchedule = LearningRateSchedule.Constant,
            LearningRate = 1e-7f,
            EarlyStoppingCriteria = on ? new EarlyStopping(EarlyStoppingMetric.Accuracy, Patience: 2, MinDelta: 0.5) : null,
        };
        var engine = new TrainingEngine(model, options, CPU);
        var snapshots = new List<Dictionary<string, Tensor>>();
        engine.EpochCompleted += _ => snapshots.Add(model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone()));

        var history = engine.Fit(TinySet(24, 1), TinySet(10, 2));

        Assert.HasCount(on ? 3 : 6, history, "epoch 1 sets the best, 2 and 3 fall short of MinDelta, so patience 2 ends the run");
        Assert.AreEqual(on, history.StoppedEarly);
        var best = history.OrderByDescending(m => m.ValidationAccuracy).ThenBy(m => m.Epoch).First().Epoch;
        Assert.AreEqual(on ? best : 6, history.KeptEpoch);
        foreach (var (name, tensor) in model.state_dict())
        {
            Assert.IsTrue(tensor.eq(snapshots[history.KeptEpoch - 1][name]).all().item<bool>(), $"'{name}' is not the kept epoch's");
        }

        if (on && best != history.Count)
        {
            Assert.IsTrue(model.state_dict().Any(p => !p.Value.eq(snapshots[^1][p.Key]).all().item<bool>()), "the last epoch's weights were kept");
        }
    }

    [TestMethod]
    public void EarlyStoppingWithoutValidationIsRefused()
    {
        using var model = ModelZoo.Create("resnet-8", new ImageShape(1, 8, 8), 2, 0);
        var engine = new TrainingEngine(model, new XNetTrainer.Options { EarlyStoppingCriteria = new EarlyStopping() }, CPU);
        var error = Assert.ThrowsExactly<ArgumentException>(() => engine.Fit(TinySet(8, 1)));
        StringAssert.Contains(error.Message, "EarlyStoppingCriteria needs a validation set");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new XNetTrainer.Options { EarlyStoppingCriteria = new EarlyStopping(Patience: 0) }.Validate());
    }

    private static float[] TrainTinyModel(int seed)
    {
        manual_seed(seed);
        using var model = ModelZoo.Create("x-resnet-8-2", new ImageShape(1, 8, 8), 2, seed);
        var options = new XNetTrainer.Options { Epoch = 2, BatchSize = 8, Seed = seed, RandomCropPadding = 1 };
        new TrainingEngine(model, options, CPU).Fit(TinySet(32, seed: 7));
        return model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();
    }

    /// <summary>Two classes of 8x8 images told apart by which half is brighter.</summary>
    internal static ImageSet TinySet(int count, int seed)
    {
        var random = new Random(seed);
        var labels = Enumerable.Range(0, count).Select(i => i % 2).ToArray();
        var pixels = labels.SelectMany(l => Enumerable.Range(0, 64).Select(p => (float)(random.NextDouble() + (p < 32 ? l : 1 - l)))).ToArray();
        return new ImageSet(new ImageShape(1, 8, 8), pixels, labels, 2);
    }
}
