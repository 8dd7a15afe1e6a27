using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Training;

namespace XNet.MLNet.Tests;

/// <summary>
/// ML.NET habits of the trainer: early stopping with a held-out validation fraction and the history on the fitted
/// transformer, and the MLContext's own cancellation (what Microsoft.ML.Experimental's <c>CancelExecution</c> and AutoML
/// call) stopping <c>Fit</c> within one batch with a checkpoint a later run resumes from.
/// </summary>
[TestClass]
public sealed class TrainerHabitsTests
{
    [TestMethod]
    public void EarlyStoppingHoldsOutAValidationFractionAndTheHistoryTravelsWithTheModel()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) =>
        {
            lock (log)
            {
                log.Add(e.Message);
            }
        };
        var data = TestData.Take(ml, "train", 100);
        var options = TestData.SmallOptions(epochs: 6);
        options.LearningRate = 1e-7f;
        options.EarlyStoppingCriteria = new EarlyStopping(Patience: 1, MinDelta: 0.5);

        using var model = ml.MulticlassClassification.Trainers.XNet(options).Fit(data);

        var history = model.TrainingHistory;
        Assert.IsNotNull(history);
        Assert.HasCount(2, history, "epoch 2 falls short of MinDelta = 0.5, so patience 1 stops the run after it");
        Assert.IsTrue(history.StoppedEarly);
        Assert.IsTrue(history.All(m => m.ValidationAccuracy is not null));
        Assert.AreEqual(1, history.KeptEpoch);
        lock (log)
        {
            Assert.IsTrue(log.Any(m => m.Contains("holding out 10 of the training images (10%)", StringComparison.Ordinal)), string.Join("\n", log));
        }

        Assert.IsNull(new XNetTransformer(XNetModelFile.Load(SaveTo(model))).TrainingHistory, "a model read from a file has no history");
    }

    [TestMethod]
    public void SeededFitsRunningAtOnceRepeatASeededFitRunAlone()
    {
        // Weights draw from TorchSharp's global generator: two Fits at once must not draw from each other's seeded stream.
        var data = TestData.Take(new MLContext(seed: 0), "train", 96);
        float[] Scores()
        {
            var ml = new MLContext(seed: 0);
            using var model = ml.MulticlassClassification.Trainers.XNet(TestData.SmallOptions()).Fit(data);
            return model.Transform(data).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
        }

        var alone = Scores();
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var together = Enumerable.Range(0, 2).Select(_ => Task.Run(Scores)).ToArray();
            Task.WaitAll(together);
            foreach (var run in together)
            {
                CollectionAssert.AreEqual(alone, run.Result, $"attempt {attempt}: a seeded Fit beside another gave other scores");
            }
        }
    }

    [TestMethod]
    public void CancellingTheMLContextStopsFitWithinOneBatchAndLeavesACheckpoint()
    {
        string run = Path.Combine(Path.GetTempPath(), $"xnet-cancel-{Guid.NewGuid():N}");
        try
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.Cache(TestData.Take(ml, "train", 96));
            int batches = 0;
            var options = TestData.SmallOptions(epochs: 2);
            options.BatchSize = 16;
            options.WorkspacePath = run;
            options.ProgressCallback = _ =>
            {
                if (++batches == 2)
                {
                    CancelExecution(ml);
                }
            };

            var ex = Assert.ThrowsExactly<OperationCanceledException>(() => ml.MulticlassClassification.Trainers.XNet(options).Fit(data));
            Assert.AreEqual(2, batches, "the batch after the cancellation must not run");
            StringAssert.Contains(ex.Message, "after batch 2");
            var checkpoint = TrainingCheckpoint.FindNewestValid(run, (file, reason) => Assert.Fail($"{file}: {reason}"));
            Assert.IsNotNull(checkpoint);
            Assert.AreEqual(0, checkpoint.Epoch);
            Assert.AreEqual(2, checkpoint.Batch);

            // A fresh context resumes from it and finishes.
            var fresh = new MLContext(seed: 1);
            var resume = TestData.SmallOptions(epochs: 2);
            resume.BatchSize = 16;
            resume.WorkspacePath = run;
            resume.ResumeFrom = run;
            using var model = fresh.MulticlassClassification.Trainers.XNet(resume).Fit(fresh.Data.Cache(TestData.Take(fresh, "train", 96)));
            Assert.HasCount(2, model.TrainingHistory!);
        }
        finally
        {
            if (Directory.Exists(run))
            {
                Directory.Delete(run, recursive: true);
            }
        }
    }

    // MLContext.CancelExecution is internal to ML.NET; Microsoft.ML.Experimental's public extension of the same name calls it.
    private static void CancelExecution(MLContext ml) =>
        typeof(MLContext).GetMethod("CancelExecution", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(ml, null);

    private static string SaveTo(XNetTransformer model)
    {
        string path = Path.Combine(Path.GetTempPath(), $"xnet-history-{Guid.NewGuid():N}.xnet");
        model.Model.Save(path);
        return path;
    }
}
