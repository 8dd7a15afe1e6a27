using Microsoft.ML;
using XNet.MLNet;
using XNet.Architectures;
using XNet.MLNet.Training;
using static TorchSharp.torch;

namespace XNet.MLNet.Tests;

/// <summary>Optimisers, the paper's reference code's schedules, top-k metrics, RandomResizedCrop, best-validation tracking and normalisation.</summary>
[TestClass]
public sealed class TrainingOptionsTests
{
    [TestMethod]
    public void CifarScheduleDropsAt150And225AndClamps()
    {
        var schedule = LearningRateSchedule.Cifar(minimum: 0.0005);
        Assert.AreEqual(0.1, schedule.At(0.1, 0, 0, 10, 300), 1e-12);
        Assert.AreEqual(0.1, schedule.At(0.1, 149, 9, 10, 300), 1e-12);
        Assert.AreEqual(0.01, schedule.At(0.1, 150, 0, 10, 300), 1e-12);
        Assert.AreEqual(0.01, schedule.At(0.1, 224, 0, 10, 300), 1e-12);
        Assert.AreEqual(0.001, schedule.At(0.1, 225, 0, 10, 300), 1e-12);
        Assert.AreEqual(0.001, schedule.At(0.1, 299, 0, 10, 300), 1e-12);
        Assert.AreEqual(0.0005, LearningRateSchedule.Cifar(minimum: 0.0005).At(0.02, 225, 0, 10, 300), 1e-12, "0.0002 is clamped to minlr");
    }

    [TestMethod]
    public void ImageNetScheduleDividesByTenEvery30EpochsAndClamps()
    {
        var schedule = LearningRateSchedule.ImageNet(minimum: 1e-5);
        Assert.AreEqual(0.1, schedule.At(0.1, 0, 0, 10, 90), 1e-12);
        Assert.AreEqual(0.1, schedule.At(0.1, 29, 9, 10, 90), 1e-12);
        Assert.AreEqual(0.01, schedule.At(0.1, 30, 0, 10, 90), 1e-12);
        Assert.AreEqual(0.01, schedule.At(0.1, 59, 0, 10, 90), 1e-12);
        Assert.AreEqual(0.001, schedule.At(0.1, 60, 0, 10, 90), 1e-12);
        Assert.AreEqual(0.0001, schedule.At(0.1, 90, 0, 10, 120), 1e-12);
        Assert.AreEqual(1e-5, schedule.At(0.1, 150, 0, 10, 200), 1e-15, "1e-6 is clamped to minlr");
    }

    [TestMethod]
    public void InvalidSchedulesAndOptionsAreNamed()
    {
        var interval = Assert.ThrowsExactly<ArgumentOutOfRangeException>(
            () => new XNetTrainer.Options { LearningRateSchedule = LearningRateSchedule.Step(0, 0.5) }.Validate());
        Assert.AreEqual("Interval", interval.ParamName);
        StringAssert.Contains(interval.Message, "at least 1");

        var minimum = Assert.ThrowsExactly<ArgumentOutOfRangeException>(
            () => new XNetTrainer.Options { LearningRateSchedule = LearningRateSchedule.Cifar(-1) }.Validate());
        Assert.AreEqual("Minimum", minimum.ParamName);

        var optimizer = Assert.ThrowsExactly<ArgumentOutOfRangeException>(
            () => new XNetTrainer.Options { Optimizer = (OptimizerKind)7 }.Validate());
        Assert.AreEqual("Optimizer", optimizer.ParamName);
        StringAssert.Contains(optimizer.Message, "Sgd or Adam");

        var scale = Assert.ThrowsExactly<ArgumentOutOfRangeException>(
            () => new XNetTrainer.Options { Augmentation = AugmentationKind.RandomResizedCrop, CropScale = (0.5, 1.5) }.Validate());
        Assert.AreEqual("CropScale", scale.ParamName);

        var erasing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new XNetTrainer.Options { RandomErasing = 1.5f }.Validate());
        Assert.AreEqual("RandomErasing", erasing.ParamName);
        StringAssert.Contains(erasing.Message, "a probability from 0 to 1");
        var smoothing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new XNetTrainer.Options { LabelSmoothing = 1 }.Validate());
        Assert.AreEqual("LabelSmoothing", smoothing.ParamName);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new XNetTrainer.Options { LabelSmoothing = float.NaN }.Validate());

        // Adam ignores momentum, so Nesterov without momentum is no error there.
        new XNetTrainer.Options { Optimizer = OptimizerKind.Adam, Momentum = 0, Nesterov = true }.Validate();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new XNetTrainer.Options { Momentum = 0, Nesterov = true }.Validate());
    }

    [TestMethod]
    public void TopKCountsLabelsAmongTheLargestLogits()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[]
        {
            9, 8, 7, 6, 5, 4, // label 0: top-1 and top-5
            9, 8, 7, 6, 5, 4, // label 4: top-5 only
            9, 8, 7, 6, 5, 4, // label 5: neither
            1, 2, 3, 4, 5, 6, // label 5: top-1 and top-5
        }).view(4, 6);
        var labels = tensor(new long[] { 0, 4, 5, 5 });

        Assert.AreEqual(2L, TrainingEngine.TopKCorrect(logits, labels, 1));
        Assert.AreEqual(3L, TrainingEngine.TopKCorrect(logits, labels, 5));
        Assert.AreEqual(4L, TrainingEngine.TopKCorrect(logits, labels, 6));

        // Fewer classes than k: top-k is top-min(k, classes), so every label counts.
        var three = tensor(new float[] { 3, 2, 1, 1, 2, 3 }).view(2, 3);
        Assert.AreEqual(2L, TrainingEngine.TopKCorrect(three, tensor(new long[] { 2, 0 }), 5));
        Assert.AreEqual(0L, TrainingEngine.TopKCorrect(three, tensor(new long[] { 2, 0 }), 1));
    }

    [TestMethod]
    public void ResizedCropDrawsAreSeededAndInsideTheImage()
    {
        var a = new Random(3);
        var b = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var box = Augmentation.DrawResizedCrop(a, 32, 24, (0.08, 1), (3.0 / 4, 4.0 / 3));
            Assert.AreEqual(box, Augmentation.DrawResizedCrop(b, 32, 24, (0.08, 1), (3.0 / 4, 4.0 / 3)));
            Assert.IsTrue(box.Height > 0 && box.Width > 0 && box.Top >= 0 && box.Left >= 0, box.ToString());
            Assert.IsTrue(box.Top + box.Height <= 32 && box.Left + box.Width <= 24, box.ToString());
        }

        Assert.AreEqual((0, 0, 8, 8), Augmentation.DrawResizedCrop(new Random(1), 8, 8, (1, 1), (1, 1)), "whole image");
        // Ratio 2 never fits a square at full area: the fallback is the centre crop with the ratio clamped to 2.
        Assert.AreEqual((2, 0, 4, 8), Augmentation.DrawResizedCrop(new Random(1), 8, 8, (1, 1), (2, 2)));
    }

    [TestMethod]
    public void ResizedCropOfTheWholeImageIsIdentityAndFlipMirrors()
    {
        using var scope = NewDisposeScope();
        var images = rand(2, 3, 6, 5);
        long[] whole = [0, 0];
        var same = Augmentation.ResizedCropAndFlip(images, whole, whole, [6, 6], [5, 5], [false, false]);
        var mirrored = Augmentation.ResizedCropAndFlip(images, whole, whole, [6, 6], [5, 5], [false, true]);

        CollectionAssert.AreEqual(new long[] { 2, 3, 6, 5 }, same.shape);
        Assert.IsTrue(same.allclose(images, rtol: 0, atol: 1e-5));
        Assert.IsTrue(mirrored[0].allclose(images[0], rtol: 0, atol: 1e-5));
        Assert.IsTrue(mirrored[1].allclose(images[1].flip(2), rtol: 0, atol: 1e-5));
    }

    [TestMethod]
    public void ResizedCropMatchesCropThenBilinearInterpolate()
    {
        using var scope = NewDisposeScope();
        var images = empty(3, 2, 12, 10).uniform_(0, 255);
        (long Top, long Left, long Height, long Width)[] boxes = { (1, 2, 5, 4), (0, 0, 12, 10), (3, 1, 9, 9) };
        var result = Augmentation.ResizedCropAndFlip(images, boxes.Select(b => b.Top).ToArray(), boxes.Select(b => b.Left).ToArray(),
            boxes.Select(b => b.Height).ToArray(), boxes.Select(b => b.Width).ToArray(), [false, false, true]);

        for (int i = 0; i < boxes.Length; i++)
        {
            var (top, left, h, w) = boxes[i];
            var crop = images[i].unsqueeze(0)[.., .., TensorIndex.Slice(top, top + h), TensorIndex.Slice(left, left + w)];
            var expected = nn.functional.interpolate(crop, new long[] { 12, 10 }, mode: InterpolationMode.Bilinear, align_corners: false)[0];
            if (i == 2)
            {
                expected = expected.flip(2);
            }

            Assert.IsTrue(result[i].allclose(expected, rtol: 0, atol: 1e-3), $"box {i}: max difference {(result[i] - expected).abs().max().item<float>()}");
        }
    }

    [TestMethod]
    public void ErasingDrawsAreSeededInsideTheImageAndWithinTheAreaRange()
    {
        int erased = 0;
        for (int seed = 0; seed < 200; seed++)
        {
            var box = Augmentation.DrawErasing(new Random(seed), 0.5, 28, 28);
            Assert.AreEqual(box, Augmentation.DrawErasing(new Random(seed), 0.5, 28, 28));
            if (box.Height == 0)
            {
                continue;
            }

            erased++;
            Assert.IsTrue(box.Top >= 0 && box.Left >= 0 && box.Top + box.Height <= 28 && box.Left + box.Width <= 28, box.ToString());
            Assert.IsTrue(box.Height < 28 && box.Width < 28, box.ToString());
            double fraction = box.Height * box.Width / (28.0 * 28);
            Assert.IsTrue(fraction is > 0.01 and < 0.4, $"{box}: {fraction:P1} of the image");
        }

        Assert.IsTrue(erased is > 70 and < 130, $"{erased} of 200 draws erased at probability 0.5");
        Assert.AreEqual((0L, 0L, 0L, 0L), Augmentation.DrawErasing(new Random(1), 0, 28, 28));
    }

    [TestMethod]
    public void EraseSetsTheBoxToTheChannelValueAndLeavesTheRest()
    {
        using var scope = NewDisposeScope();
        var images = empty(2, 3, 6, 5).uniform_(0, 255);
        var value = tensor(new float[] { 10, 20, 30 });
        var result = Augmentation.Erase(images, [1, 0], [2, 0], [3, 0], [2, 4], value);

        var inside = zeros(new long[] { 6, 5 }, ScalarType.Bool);
        inside[TensorIndex.Slice(1, 4), TensorIndex.Slice(2, 4)] = tensor(true);
        for (int c = 0; c < 3; c++)
        {
            Assert.IsTrue(result[0, c].masked_select(inside).eq(value[c]).all().item<bool>(), $"channel {c} inside the box");
            Assert.IsTrue(result[0, c].masked_select(inside.logical_not()).eq(images[0, c].masked_select(inside.logical_not())).all().item<bool>());
        }

        Assert.IsTrue(result[1].eq(images[1]).all().item<bool>(), "height 0 erases nothing, whatever the width");
    }

    [TestMethod]
    public void ErasingAndLabelSmoothingTrainDeterministicallyAndChangeTheRun()
    {
        float[] Train(float erasing, float smoothing)
        {
            manual_seed(3);
            using var model = ModelZoo.Create("x-resnet-8-2", new ImageShape(1, 8, 8), 2, 3);
            var options = new XNetTrainer.Options { Epoch = 2, BatchSize = 8, Seed = 3, RandomErasing = erasing, LabelSmoothing = smoothing };
            var history = new TrainingEngine(model, options, CPU).Fit(TinySet(32, seed: 7));
            Assert.IsTrue(history.All(m => double.IsFinite(m.TrainLoss)));
            return model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();
        }

        var plain = Train(0, 0);
        CollectionAssert.AreEqual(Train(0.5f, 0.1f), Train(0.5f, 0.1f));
        CollectionAssert.AreNotEqual(plain, Train(0.5f, 0));
        CollectionAssert.AreNotEqual(plain, Train(0, 0.1f));
    }

    [TestMethod]
    public void AdamWithRandomResizedCropTrainsDeterministically()
    {
        float[] Train(int seed)
        {
            manual_seed(seed);
            using var model = ModelZoo.Create("x-resnet-8-2", new ImageShape(1, 8, 8), 2, seed);
            var options = new XNetTrainer.Options
            {
                Epoch = 2, BatchSize = 8, Seed = seed, Optimizer = OptimizerKind.Adam, LearningRate = 0.01f,
                Augmentation = AugmentationKind.RandomResizedCrop, CropScale = (0.5, 1),
            };
            var history = new TrainingEngine(model, options, CPU).Fit(TinySet(32, seed: 7));
            Assert.IsTrue(history.All(m => double.IsFinite(m.TrainLoss) && m.TrainTop5Accuracy == 1), "2 classes: top-5 is every image");
            return model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();
        }

        CollectionAssert.AreEqual(Train(4), Train(4));
        CollectionAssert.AreNotEqual(Train(4), Train(5));
    }

    [TestMethod]
    public void HistoryKeepsBestValidationApartFromTheFinalEpoch()
    {
        var history = new TrainingHistory(new[]
        {
            Epoch(1, 0.50), Epoch(2, 0.75), Epoch(3, 0.75), Epoch(4, 0.60),
        });

        Assert.AreEqual(0.75, history.BestValidationAccuracy);
        Assert.AreEqual(2, history.BestValidationEpoch, "the first of equal accuracies");
        Assert.AreEqual(4, history.Final.Epoch);
        Assert.AreEqual(4, history.KeptEpoch);
        Assert.IsNull(new TrainingHistory(new[] { Epoch(1, null) }).BestValidationEpoch);

        var lines = RunFolder.MetricsLines(history).ToArray();
        Assert.AreEqual(RunFolder.MetricsHeader, lines[0]);
        Assert.AreEqual("4,1,0.5,0.9,2,0.6,0.95,0.75,2,0.1,100,4", lines[4]);
        Assert.AreEqual("1,1,0.5,0.9,2,0.5,0.95,0.5,1,0.1,100,1", lines[1]);
    }

    [TestMethod]
    public void KeepBestValidationModelRestoresTheBestEpoch()
    {
        manual_seed(2);
        using var model = ModelZoo.Create("resnet-8", new ImageShape(1, 8, 8), 2, 2);
        var options = new XNetTrainer.Options
        {
            Epoch = 4, BatchSize = 8, Seed = 2, LearningRate = 0.5f, LearningRateSchedule = LearningRateSchedule.Constant, KeepBestValidationModel = true,
        };
        var validation = TinySet(16, 9);
        var history = new TrainingEngine(model, options, CPU).Fit(TinySet(24, 1), validation);

        Assert.AreEqual(history.BestValidationEpoch, history.KeptEpoch);
        var result = TrainingEngine.Evaluate(model, validation, 256, CPU);
        Assert.AreEqual(history.BestValidationAccuracy!.Value, result.Accuracy, 1e-12);
        Assert.AreEqual(history.BestValidation!.ValidationLoss!.Value, result.Loss, 1e-5);

        var ex = Assert.ThrowsExactly<ArgumentException>(() => new TrainingEngine(model, options, CPU).Fit(TinySet(8, 1)));
        StringAssert.Contains(ex.Message, "KeepBestValidationModel");
    }

    [TestMethod]
    public void GivenChannelConstantsReplaceTheComputedOnes()
    {
        var mlContext = new MLContext(seed: 1);
        var data = TestData.Take(mlContext, "train", 64);
        var options = TestData.SmallOptions();
        options.ChannelMean = new[] { 72.9f };
        options.ChannelStd = new[] { 90.0f };
        using var model = mlContext.MulticlassClassification.Trainers.XNet(options).Fit(data);

        CollectionAssert.AreEqual(new[] { 72.9f }, model.Model.ChannelMean.ToArray());
        CollectionAssert.AreEqual(new[] { 90.0f }, model.Model.ChannelStd.ToArray());

        var wrongLength = TestData.SmallOptions();
        wrongLength.ChannelMean = new[] { 125.3f, 123.0f, 113.9f };
        var ex = Assert.ThrowsExactly<ArgumentException>(() => mlContext.MulticlassClassification.Trainers.XNet(wrongLength).Fit(data));
        Assert.AreEqual("ChannelMean", ex.ParamName);
        StringAssert.Contains(ex.Message, "3 value(s) but the images (1x28x28) have 1 channel(s)");

        var zeroStd = TestData.SmallOptions();
        zeroStd.ChannelStd = new[] { 0f };
        ex = Assert.ThrowsExactly<ArgumentException>(() => mlContext.MulticlassClassification.Trainers.XNet(zeroStd).Fit(data));
        StringAssert.Contains(ex.Message, "ChannelStd[0] = 0 must be a positive finite number");
    }

    private static EpochMetrics Epoch(int epoch, double? validationAccuracy) =>
        new(epoch, 4, 1, 0.5, 0.9, validationAccuracy is null ? null : 2, validationAccuracy, validationAccuracy is null ? null : 0.95,
            0.1, 100, TimeSpan.FromSeconds(epoch));

    private static ImageSet TinySet(int count, int seed)
    {
        var random = new Random(seed);
        var labels = Enumerable.Range(0, count).Select(i => i % 2).ToArray();
        var pixels = labels.SelectMany(l => Enumerable.Range(0, 64).Select(p => (float)(random.NextDouble() + (p < 32 ? l : 1 - l)))).ToArray();
        return new ImageSet(new ImageShape(1, 8, 8), pixels, labels, 2);
    }
}
