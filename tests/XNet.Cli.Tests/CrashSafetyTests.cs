using System.Diagnostics;
using XNet.MLNet.Training;
using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>
/// <c>xnet train</c> in a child process, killed with SIGKILL at random moments (some of them while a checkpoint is being
/// written): every time, the run folder still holds a valid checkpoint and <c>--resume</c> continues from it.
/// </summary>
[TestClass]
public sealed class CrashSafetyTests
{
    private static readonly string Xnet = Path.Combine(AppContext.BaseDirectory, "xnet.dll");

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void KilledRunsResumeFromTheNewestValidCheckpoint()
    {
        string root = TestFolders.Create(TestContext);
        // ResNet-18 on 32x32 images: 11.7 M parameters make each checkpoint (weights and momentum, about 94 MB) take far
        // longer to write than a batch of 8 images takes to train, so many kills land inside a write.
        var (data, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 16, testRecords: 8);
        string run = Path.Combine(root, "run");
        string checkpoints = Path.Combine(run, "checkpoints");
        string[] fresh = { "train", "--data", data, "--model", "resnet-18", "--epochs", "3", "--batch-size", "8",
            "--checkpoint-every", "2", "--seed", "1", "--output-dir", run };
        var random = new Random(2026);
        int kills = 0, killsWhileWriting = 0;
        for (int attempt = 0; attempt < 12 && (kills < 6 || killsWhileWriting < 2); attempt++)
        {
            var before = TrainingCheckpoint.FindNewestValid(run);
            using var child = Start(before is null ? fresh : new[] { "train", "--resume", run });
            WaitForANewCheckpoint(checkpoints, before?.Path, child);
            if (attempt % 2 == 0)
            {
                Thread.Sleep(random.Next(0, 1000)); // a random moment: training, or writing the next checkpoint
            }
            else
            {
                WaitForAWriteInProgress(checkpoints, child); // the middle of the next checkpoint write
            }
            if (child.HasExited)
            {
                Assert.Fail($"the run finished before {kills + 1} kills; make it longer. Output:\n{child.StandardOutput.ReadToEnd()}");
            }

            child.Kill(); // SIGKILL on Linux: no handler, no flush, no cleanup
            child.WaitForExit();
            kills++;
            bool whileWriting = Directory.Exists(checkpoints) && Directory.EnumerateFiles(checkpoints, ".xnet-tmp-*").Any();
            killsWhileWriting += whileWriting ? 1 : 0;

            var newest = TrainingCheckpoint.FindNewestValid(run, (file, reason) => Assert.Fail($"invalid checkpoint {file}: {reason}"));
            TestContext.WriteLine($"kill {kills}{(whileWriting ? " (while writing a checkpoint)" : "")}: newest valid checkpoint " +
                                  $"{(newest is null ? "(none yet)" : Path.GetFileName(newest.Path))}");
        }

        Assert.IsGreaterThanOrEqualTo(6, kills);
        Assert.IsGreaterThanOrEqualTo(2, killsWhileWriting, "kills landed while a checkpoint was being written");

        var expected = TrainingCheckpoint.FindNewestValid(run)!;
        using var last = Start("train", "--resume", run);
        string output = last.StandardOutput.ReadToEnd();
        last.WaitForExit();
        TestContext.WriteLine(output);
        Assert.AreEqual(0, last.ExitCode, output);
        StringAssert.Contains(output.Replace("\n", ""), $"Resuming from {expected.Path}", "Spectre wraps redirected output at 80 columns");
        Assert.HasCount(4, File.ReadAllLines(Path.Combine(run, "metrics.csv")), "a header and all 3 epochs");
        Assert.IsTrue(File.Exists(Path.Combine(run, "model.xnet")));
    }

    [TestMethod]
    [DataRow("INT", 130, DisplayName = "Ctrl+C")]
    [DataRow("TERM", 143, DisplayName = "SIGTERM")]
    public void ASignalStopsAtABatchBoundaryWritesACheckpointAndSaysHowToResume(string signal, int exitCode)
    {
        string root = TestFolders.Create(TestContext);
        string data = GeneratedDatasets.WriteIdx(Path.Combine(root, "mnist"), trainImages: 2048, testImages: 64);
        string run = Path.Combine(root, "run");
        using var child = Start("train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "4", "--batch-size", "16",
            "--output-dir", run);
        string checkpoints = Path.Combine(run, "checkpoints");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(run, RunFolderLock)) && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            Thread.Sleep(100);
        }

        Thread.Sleep(1500); // into the first epoch
        using (var interrupt = Process.Start("kill", new[] { "-s", signal, child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }))
        {
            interrupt.WaitForExit();
        }

        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        TestContext.WriteLine(output);

        Assert.AreEqual(exitCode, child.ExitCode, output);
        string flat = output.Replace("\n", "");
        StringAssert.Contains(flat, "Training was cancelled at epoch 1, after batch");
        StringAssert.Contains(flat, $"Continue with: xnet train --resume {run}");
        var checkpoint = TrainingCheckpoint.FindNewestValid(run);
        Assert.IsNotNull(checkpoint);
        Assert.AreEqual(0, checkpoint.Epoch);
        Assert.IsGreaterThan(0, checkpoint.Batch, "the checkpoint holds the batches trained before Ctrl+C");
    }

    [TestMethod]
    public void ACtrlCDuringASweepSaysToRunTheSweepAgain()
    {
        string root = TestFolders.Create(TestContext);
        string data = GeneratedDatasets.WriteIdx(Path.Combine(root, "mnist"), trainImages: 2048, testImages: 64);
        string plan = Path.Combine(root, "plan.json");
        File.WriteAllText(plan, $$"""
            { "data": "{{data}}", "models": ["x-resnet-8-2"], "seeds": [0],
              "recipe": { "epoch": 4, "batchSize": 16, "validationSetFraction": 0.1 } }
            """);
        using var child = Start("sweep", plan);
        string run = Path.Combine(root, "plan", "runs", "x-resnet-8-2", "seed-0");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(run, RunFolderLock)) && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            Thread.Sleep(100);
        }

        Thread.Sleep(1500); // into the first epoch
        using (var interrupt = Process.Start("kill", new[] { "-s", "INT", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }))
        {
            interrupt.WaitForExit();
        }

        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();

        Assert.AreEqual(130, child.ExitCode, output);
        string flat = output.Replace("\n", "");
        StringAssert.Contains(flat, "Training was cancelled at epoch 1");
        StringAssert.Contains(flat, $"Continue with: xnet sweep {plan} (finished runs are skipped, this one resumes).");
        Assert.DoesNotContain("Resume from", flat);
    }

    private const string RunFolderLock = "run.lock"; // taken once the data is read, before the first batch

    /// <summary>Waits until a checkpoint is being written (its temporary file exists), so the kill lands inside the write.</summary>
    private static void WaitForAWriteInProgress(string directory, Process child)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(120) && !child.HasExited
               && !(Directory.Exists(directory) && Directory.EnumerateFiles(directory, ".xnet-tmp-*").Any()))
        {
            Thread.Sleep(5);
        }
    }

    /// <summary>Waits until the child has written a checkpoint newer than <paramref name="previous"/>, so every kill follows progress.</summary>
    private static void WaitForANewCheckpoint(string directory, string? previous, Process child)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(120) && !child.HasExited)
        {
            string? newest = Directory.Exists(directory)
                ? Directory.EnumerateFiles(directory, "checkpoint-*.xckpt").Max(StringComparer.Ordinal)
                : null;
            if (newest is not null && string.CompareOrdinal(newest, previous) > 0)
            {
                return;
            }

            Thread.Sleep(20);
        }
    }

    private static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Xnet);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }
}
