namespace XNet.Cli.Tests;

/// <summary>
/// Hostile run folders for <c>xnet train --output-dir/--resume</c> and hostile output paths for <c>xnet export</c>: a
/// folder held by another run's lock, files where folders should be (and the reverse), places that cannot be written,
/// and a disk that fills up (simulated with <c>ulimit -f</c>: writes past it fail with EFBIG, as a full disk fails them
/// with ENOSPC). Each must end with exit code 1 and one <c>error:</c> line naming the path, leave the earlier run's files
/// as they were and leave no partial file behind.
/// </summary>
[TestClass]
public sealed class HostileRunFolderTests : HostileTestBase
{
    [ClassInitialize]
    public static void TrainFixture(TestContext _) => HostileFixture.Get();

    [TestMethod]
    [DataRow(false, DisplayName = "a new run in a folder another run holds")]
    [DataRow(true, DisplayName = "--resume of a run another run holds")]
    public void ARunFolderHeldByAnotherRunIsRefusedUntouched(bool resume)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        HostileCases.CopyFolder(fixture.Run, run);
        string lockFile = Path.Combine(run, "run.lock");
        HostileRun result;
        Snapshot before;
        // The other run: RunFolder.Open holds run.lock exclusively (an advisory lock), so this stream stands for it.
        using (var held = new FileStream(lockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            before = Snapshot.Of(run);
            result = resume ? HostileCases.Run("train", "--resume", run) : HostileCases.Run(TrainArgs(fixture.Cifar, run));
            HostileCases.AssertRefused(result, 1, [run], unchanged: before, clean: [run]);
        }
    }

    [TestMethod]
    [DataRow("a regular file")]
    [DataRow("a path below a regular file")]
    [DataRow("a named pipe (FIFO)")]
    [DataRow("a symbolic link loop")]
    [DataRow("a folder under /proc")]
    public void AnOutputDirThatCannotBeAFolderIsRefused(string what)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string file = Path.Combine(folder, "notes.txt");
        File.WriteAllText(file, "a file the user keeps\n");
        string output = what switch
        {
            "a regular file" => file,
            "a path below a regular file" => Path.Combine(file, "run"),
            "a folder under /proc" => $"/proc/xnet-hostile-{Guid.NewGuid():N}/run",
            _ => Path.Combine(folder, "run"),
        };
        if (what == "a named pipe (FIFO)")
        {
            HostileCases.MakeFifo(output);
        }
        else if (what == "a symbolic link loop")
        {
            Directory.CreateSymbolicLink(output, output);
        }

        var before = Snapshot.Of(folder);

        var run = HostileCases.Run(TrainArgs(fixture.Cifar, output));

        HostileCases.AssertRefused(run, 1, [output], unchanged: before, clean: [folder],
            absent: what == "a folder under /proc" ? [output] : null);
    }

    [TestMethod]
    [DataRow(false, DisplayName = "checkpoints is a regular file, new run")]
    [DataRow(true, DisplayName = "checkpoints is a regular file, --resume")]
    public void ACheckpointsFileWhereTheFolderShouldBeIsRefusedUntouched(bool resume)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        HostileCases.CopyFolder(fixture.Run, run);
        string checkpoints = Path.Combine(run, "checkpoints");
        Directory.Delete(checkpoints, recursive: true);
        File.WriteAllText(checkpoints, "not a folder\n");
        var before = Snapshot.Of(run);

        var result = resume ? HostileCases.Run("train", "--resume", run) : HostileCases.Run(TrainArgs(fixture.Cifar, run));

        HostileCases.AssertRefused(result, 1, [checkpoints], unchanged: before, clean: [run]);
    }

    [TestMethod]
    [DataRow("model.xnet")]
    [DataRow("metrics.csv")]
    [DataRow("training-curves.png")]
    [DataRow("run.lock")]
    public void AFolderWhereARunFileShouldBeIsRefused(string name)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        string culprit = Directory.CreateDirectory(Path.Combine(run, name)).FullName;

        var result = HostileCases.Run(TrainArgs(fixture.Cifar, run));

        // A folder named run.lock is not another run.
        HostileCases.AssertRefused(result, 1, [culprit], clean: [run], mustNotSay: ["in use by another training run"]);
    }

    [TestMethod]
    [DataRow("a stale run.lock left by a killed run")]
    [DataRow("metrics.csv holding garbage")]
    [DataRow("training-curves.png holding garbage")]
    public void ResumeIsNotBlockedByADamagedSideFile(string damage)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        HostileCases.CopyFolder(fixture.Run, run);
        string file = Path.Combine(run, damage.Split(' ').First(w => w.Contains('.', StringComparison.Ordinal)));
        File.WriteAllBytes(file, [0xFF, 0x00, 0x13, 0x37, (byte)'\n', 0x00]);

        var result = HostileCases.Run("train", "--resume", run);

        HostileCases.AssertAccepted(result);
    }

    [TestMethod]
    public void ADiskThatFillsUpDuringTrainingEndsWithOneErrorAndNoPartialFile()
    {
        var fixture = HostileFixture.Get();
        string output = Path.Combine(NewFolder(), "run");

        var run = HostileCases.RunIsolated(TimeSpan.FromSeconds(20), TrainArgs(fixture.Cifar, output), fileSizeKb: 64);

        HostileCases.AssertRefused(run, 1, [output], clean: [output]);
    }

    [TestMethod]
    [DataRow("--onnx")]
    [DataRow("--mlnet")]
    public void ADiskThatFillsUpDuringExportEndsWithOneErrorAndNoPartialFile(string flag)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string target = Path.Combine(folder, flag == "--onnx" ? "model.onnx" : "model.zip");
        string model = Path.Combine(folder, "model.xnet");
        File.Copy(fixture.Model, model);
        var before = Snapshot.Of(folder);

        var run = HostileCases.RunIsolated(TimeSpan.FromSeconds(10), ["export", "--model", model, flag, target], fileSizeKb: 64);

        HostileCases.AssertRefused(run, 1, [target], unchanged: before, absent: [target], clean: [folder]);
    }

    [TestMethod]
    public void AnExportOverAnExistingFileThatFailsLeavesItUntouched()
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string target = Path.Combine(folder, "model.onnx");
        File.Copy(fixture.Onnx, target);
        string model = Path.Combine(folder, "model.xnet");
        File.Copy(fixture.Model, model);
        HostileZip.FlipCompressedByte(model, "weights.bin");
        var before = Snapshot.Of(folder);

        var run = HostileCases.Run("export", "--model", model, "--onnx", target);

        HostileCases.AssertRefused(run, 1, [model], unchanged: before, clean: [folder]);
    }

    private static string[] TrainArgs(string data, string output) =>
        ["train", "--data", data, "--model", "x-resnet-8-2", "--epochs", "1", "--batch-size", "5", "--output-dir", output];
}
