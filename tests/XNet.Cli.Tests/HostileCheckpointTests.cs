using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace XNet.Cli.Tests;

/// <summary>
/// Hostile checkpoints for <c>xnet train --resume</c>. A damaged only checkpoint ends with exit code 1 and one
/// <c>error:</c> line naming it, the run folder untouched; a damaged newest checkpoint beside a good older one is skipped,
/// saying so, and the run resumes from the older one; a folder with no checkpoint at all is a usage error (exit code 2).
/// </summary>
[TestClass]
public sealed class HostileCheckpointTests : HostileTestBase
{
    private const string Manifest = "checkpoint.json";
    private const string ModelBlob = "model.bin";

    private static readonly HashSet<string> Isolated =
    [
        "model.bin garbage, digest recomputed", "optimizer.bin garbage, digest recomputed", "rng.bin of 7 bytes, digest recomputed",
        "a named pipe (FIFO)", "height 100000 (absurd shape)",
    ];

    [ClassInitialize]
    public static void TrainFixture(TestContext _) => HostileFixture.Get();

    [TestMethod]
    [DataRow("empty file")]
    [DataRow("truncated to half")]
    [DataRow("truncated by 1 byte")]
    [DataRow("not a zip")]
    [DataRow("no manifest")]
    [DataRow("manifest not JSON")]
    [DataRow("manifest null")]
    [DataRow("manifest without sha256")]
    [DataRow("manifest sha256 null")]
    [DataRow("manifest without architecture")]
    [DataRow("manifest without class names")]
    [DataRow("manifest without options")]
    [DataRow("manifest options null")]
    [DataRow("manifest without progress")]
    [DataRow("manifest without history")]
    [DataRow("options without tags")]
    [DataRow("tag imageSize not a number")]
    [DataRow("tag imageSize missing")]
    [DataRow("format version 1")]
    [DataRow("format version 3")]
    [DataRow("format version missing")]
    [DataRow("model.bin altered")]
    [DataRow("sha256 of model.bin altered")]
    [DataRow("model.bin entry missing")]
    [DataRow("model.bin garbage, digest recomputed")]
    [DataRow("optimizer.bin garbage, digest recomputed")]
    [DataRow("rng.bin of 7 bytes, digest recomputed")]
    [DataRow("height 100000 (absurd shape)")]
    [DataRow("channels 0")]
    [DataRow("epoch -1")]
    [DataRow("batch -5")]
    [DataRow("epoch 2147483647")]
    [DataRow("recorded options invalid (epoch 0)")]
    [DataRow("model.bin deflate bomb (128 MiB)")]
    [DataRow("a named pipe (FIFO)")]
    [DataRow("a symbolic link loop")]
    public void ResumeRefusesADamagedOnlyCheckpoint(string damage)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        HostileCases.CopyFolder(fixture.Run, run);
        File.Delete(Path.Combine(run, "checkpoints", Path.GetFileName(fixture.OlderCheckpoint)));
        string checkpoint = Path.Combine(run, "checkpoints", Path.GetFileName(fixture.NewestCheckpoint));
        Damage(checkpoint, damage);
        var before = Snapshot.Of(run);

        string[] args = ["train", "--resume", run];
        var result = Isolated.Contains(damage) ? HostileCases.RunIsolated(TimeSpan.FromSeconds(15), args) : HostileCases.Run(args);

        HostileCases.AssertRefused(result, 1, [checkpoint], unchanged: before, clean: [run],
            maxAllocated: damage.Contains("bomb", StringComparison.Ordinal) ? HostileCases.BombAllocationBudget : null);
    }

    [TestMethod]
    [DataRow("truncated to half")]
    [DataRow("model.bin altered")]
    [DataRow("manifest without sha256")]
    [DataRow("manifest without options")]
    [DataRow("format version 3")]
    [DataRow("a named pipe (FIFO)")]
    [DataRow("a symbolic link loop")]
    public void ResumeSkipsADamagedNewestCheckpointAndSaysWhich(string damage)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        HostileCases.CopyFolder(fixture.Run, run);
        string newest = Path.Combine(run, "checkpoints", Path.GetFileName(fixture.NewestCheckpoint));
        string older = Path.Combine(run, "checkpoints", Path.GetFileName(fixture.OlderCheckpoint));
        Damage(newest, damage);

        string[] args = ["train", "--resume", run];
        var result = damage == "a named pipe (FIFO)" ? HostileCases.RunIsolated(TimeSpan.FromSeconds(20), args) : HostileCases.Run(args);

        HostileCases.AssertFallsBack(result, newest, older);
    }

    [TestMethod]
    [DataRow("an empty folder", 2)]
    [DataRow("a folder that does not exist", 2)]
    [DataRow("a run folder with an empty checkpoints folder", 2)]
    [DataRow("a model file instead of a checkpoint", 1)]
    public void ResumeOfAFolderWithoutACheckpoint(string what, int exitCode)
    {
        var fixture = HostileFixture.Get();
        string folder = NewFolder();
        string resume = Path.Combine(folder, "run");
        switch (what)
        {
            case "an empty folder":
                Directory.CreateDirectory(resume);
                break;
            case "a folder that does not exist":
                break;
            case "a run folder with an empty checkpoints folder":
                HostileCases.CopyFolder(fixture.Run, resume);
                foreach (string file in Directory.GetFiles(Path.Combine(resume, "checkpoints")))
                {
                    File.Delete(file);
                }

                break;
            default:
                resume = Path.Combine(folder, "model.xnet");
                File.Copy(fixture.Model, resume);
                break;
        }

        var before = Snapshot.Of(folder);

        var run = HostileCases.Run("train", "--resume", resume);

        HostileCases.AssertRefused(run, exitCode, [resume], unchanged: before, clean: [folder]);
    }

    [TestMethod]
    [DataRow("--data")]
    [DataRow("--image-size")]
    [DataRow("--skip-unreadable")]
    public void ResumeWithADataFlagIsAUsageError(string flag)
    {
        var fixture = HostileFixture.Get();
        string run = Path.Combine(NewFolder(), "run");
        HostileCases.CopyFolder(fixture.Run, run);
        var before = Snapshot.Of(run);
        string[] value = flag switch
        {
            "--data" => [fixture.Cifar],
            "--image-size" => ["64"],
            _ => [],
        };

        var result = HostileCases.Run(["train", "--resume", run, flag, .. value]);

        HostileCases.AssertRefused(result, 2, [flag], unchanged: before, clean: [run]);
    }

    /// <summary>Damages the checkpoint at <paramref name="path"/> (a copy of a valid one).</summary>
    private static void Damage(string path, string damage)
    {
        void Json(Action<JsonObject> edit) => HostileZip.EditJson(path, Manifest, edit);
        void Replace(string entry, byte[] content) => HostileZip.Edit(path, (name, old) =>
            name == entry ? content
            : name == Manifest ? WithDigest(old, entry, content)
            : old);
        long length = File.Exists(path) ? new FileInfo(path).Length : 0;
        switch (damage)
        {
            case "empty file": HostileCases.Truncate(path, 0); break;
            case "truncated to half": HostileCases.Truncate(path, length / 2); break;
            case "truncated by 1 byte": HostileCases.Truncate(path, length - 1); break;
            case "not a zip": File.WriteAllText(path, "checkpoint? no.\n"); break;
            case "no manifest": HostileZip.Edit(path, (name, content) => name == Manifest ? null : content); break;
            case "manifest not JSON": HostileZip.Replace(path, Manifest, "{ \"formatVersion\": 2,"u8.ToArray()); break;
            case "manifest null": HostileZip.Replace(path, Manifest, "null"u8.ToArray()); break;
            case "manifest without sha256": Json(j => j.Remove("sha256")); break;
            case "manifest sha256 null": Json(j => j["sha256"] = null); break;
            case "manifest without architecture": Json(j => j.Remove("architecture")); break;
            case "manifest without class names": Json(j => j.Remove("classNames")); break;
            case "manifest without options": Json(j => j.Remove("options")); break;
            case "manifest options null": Json(j => j["options"] = null); break;
            case "manifest without progress": Json(j => j.Remove("progress")); break;
            case "manifest without history": Json(j => j.Remove("history")); break;
            case "options without tags": Json(j => j["options"]!.AsObject().Remove("tags")); break;
            case "tag imageSize not a number": Json(j => j["options"]!["tags"]!["imageSize"] = "thirty-two"); break;
            case "tag imageSize missing": Json(j => j["options"]!["tags"]!.AsObject().Remove("imageSize")); break;
            case "format version 1": Json(j => j["formatVersion"] = 1); break;
            case "format version 3": Json(j => j["formatVersion"] = 3); break;
            case "format version missing": Json(j => j.Remove("formatVersion")); break;
            case "model.bin altered":
                HostileZip.Edit(path, (name, content) =>
                {
                    if (name == ModelBlob)
                    {
                        content[content.Length / 2] ^= 0x5A;
                    }

                    return content;
                });
                break;
            case "sha256 of model.bin altered": Json(j => j["sha256"]![ModelBlob] = new string('0', 64)); break;
            case "model.bin entry missing": HostileZip.Edit(path, (name, content) => name == ModelBlob ? null : content); break;
            case "model.bin garbage, digest recomputed": Replace(ModelBlob, Garbage(HostileZip.Read(path).Single(e => e.Name == ModelBlob).Content.Length)); break;
            case "optimizer.bin garbage, digest recomputed": Replace("optimizer.bin", Garbage(HostileZip.Read(path).Single(e => e.Name == "optimizer.bin").Content.Length)); break;
            case "rng.bin of 7 bytes, digest recomputed": Replace("rng.bin", Garbage(7)); break;
            case "height 100000 (absurd shape)": Json(j => { j["height"] = 100000; j["width"] = 100000; }); break;
            case "channels 0": Json(j => j["channels"] = 0); break;
            case "epoch -1": Json(j => j["epoch"] = -1); break;
            case "batch -5": Json(j => j["batch"] = -5); break;
            case "epoch 2147483647": Json(j => j["epoch"] = int.MaxValue); break;
            case "recorded options invalid (epoch 0)": Json(j => j["options"]!["epoch"] = 0); break;
            case "model.bin deflate bomb (128 MiB)":
                long size = 128L << 20;
                Json(j => j["sha256"]![ModelBlob] = ZerosDigest(size));
                HostileZip.ReplaceWithBomb(path, ModelBlob, [], 0, size, []);
                break;
            case "a named pipe (FIFO)":
                File.Delete(path);
                HostileCases.MakeFifo(path);
                break;
            case "a symbolic link loop":
                File.Delete(path);
                File.CreateSymbolicLink(path, path);
                break;
            default: throw new ArgumentException($"unknown damage '{damage}'");
        }
    }

    private static byte[] WithDigest(byte[] manifest, string entry, byte[] content)
    {
        var json = JsonNode.Parse(manifest)!.AsObject();
        json["sha256"]![entry] = Convert.ToHexString(SHA256.HashData(content));
        return System.Text.Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    private static string ZerosDigest(long count)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var zeros = new byte[1 << 20];
        for (long done = 0; done < count; done += zeros.Length)
        {
            hash.AppendData(zeros, 0, (int)Math.Min(zeros.Length, count - done));
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private static byte[] Garbage(int count)
    {
        var bytes = new byte[count];
        new Random(7).NextBytes(bytes);
        return bytes;
    }
}
