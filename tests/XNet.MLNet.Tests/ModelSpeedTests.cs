using XNet.Architectures;
using XNet.MLNet.Training;
using static TorchSharp.torch;

namespace XNet.MLNet.Tests;

/// <summary>The measurement behind <c>xnet bench</c> and the speed goals: figures per round, and their medians.</summary>
[TestClass]
public sealed class ModelSpeedTests
{
    [TestMethod]
    public void EachRoundAddsOneTrainingAndOneScoringFigure()
    {
        var input = new ImageShape(1, 8, 8);
        using var speed = new ModelSpeed("x-resnet-8-2", input, classes: 2, batchSize: 4, CPU);
        speed.Warm();
        speed.Round(1);
        speed.Round(1);

        Assert.AreEqual(2, speed.Training.Count);
        Assert.AreEqual(2, speed.Scoring.Count);
        Assert.IsTrue(speed.Training.Concat(speed.Scoring).All(f => double.IsFinite(f) && f > 0), string.Join(", ", speed.Training.Concat(speed.Scoring)));
        using var network = ModelZoo.Create("x-resnet-8-2", input, 2, seed: 0);
        Assert.AreEqual(ModelCost.Measure(network, input), speed.Cost);
    }

    [TestMethod]
    public void InTurnsGivesEveryModelOneFigurePerRoundAndStopsWhenCancelled()
    {
        var input = new ImageShape(1, 8, 8);
        using var x = new ModelSpeed("x-resnet-8-2", input, classes: 2, batchSize: 4, CPU);
        using var dense = new ModelSpeed("resnet-8", input, classes: 2, batchSize: 4, CPU);
        ModelSpeed.InTurns([x, dense], rounds: 3, steps: 1);

        CollectionAssert.AreEqual(new[] { 3, 3, 3, 3 }, new[] { x.Training.Count, x.Scoring.Count, dense.Training.Count, dense.Scoring.Count });
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsExactly<OperationCanceledException>(() => ModelSpeed.InTurns([x], rounds: 1, steps: 1, cancelled.Token));
        Assert.AreEqual(3, x.Training.Count, "no round after cancellation");
    }

    [TestMethod]
    public void MediansAreOfTheValuesAndRatiosOfTheSameRound()
    {
        Assert.AreEqual(3, ModelSpeed.Median([5, 1, 3]));
        Assert.AreEqual(2.5, ModelSpeed.Median([4, 1, 3, 2]));
        // Per-round ratios 2, 1 and 6 (median 2), where the ratio of the medians would be 6 / 2.
        Assert.AreEqual(2, ModelSpeed.MedianRatio([8, 2, 6], [4, 2, 1]));
        Assert.ThrowsExactly<ArgumentException>(() => ModelSpeed.Median([]));
    }
}
