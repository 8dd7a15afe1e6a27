using System.Diagnostics;

namespace XNet.MLNet.Tests;

/// <summary>
/// Runs build/pack-and-consume.sh: packs both packages and builds, runs and publishes a consumer project outside the
/// repository that uses them as a user would (docs/packaging.md). About 30 s on the 2-core build machine.
/// Leave it out with <c>dotnet test --filter "TestCategory!=Packaging"</c>.
/// </summary>
[TestClass]
public sealed class PackagingTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    [TestMethod]
    [TestCategory("Packaging")]
    public void PackedPackagesTrainEvaluateSaveAndLoadInAConsumerProject()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("build/pack-and-consume.sh is a Linux script.");
        }

        string repository = RepositoryRoot();
        string log = Path.Combine(Path.GetTempPath(), $"xnet-pack-and-consume-{Environment.ProcessId}-{Guid.NewGuid():N}.log");
        try
        {
            // Output goes to a file, not a pipe: build servers the script's dotnet commands leave running inherit the
            // handle, and a pipe would then never reach end-of-file.
            var start = new ProcessStartInfo("bash")
            {
                ArgumentList = { "-c", "exec bash build/pack-and-consume.sh > \"$0\" 2>&1", log },
                WorkingDirectory = repository,
                UseShellExecute = false,
            };
            // dotnet test runs this under MSBuild, whose variables would steer the script's own dotnet commands.
            foreach (string name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                start.Environment.Remove(name);
            }

            using var process = Process.Start(start)!;
            if (!process.WaitForExit(Limit))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"build/pack-and-consume.sh ran past {Limit.TotalMinutes} minutes:\n{Tail(log)}");
            }

            string output = File.ReadAllText(log);
            Assert.AreEqual(0, process.ExitCode, $"build/pack-and-consume.sh exited with {process.ExitCode}:\n{Tail(log)}");
            StringAssert.Contains(output, "\nPASS\n", "the consumer program did not print PASS");
            StringAssert.Contains(output, "pack-and-consume: PASS", Tail(log));
        }
        finally
        {
            File.Delete(log);
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "XNet.MLNet.sln")) &&
                File.Exists(Path.Combine(directory.FullName, "build", "pack-and-consume.sh")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No repository root (XNet.MLNet.sln) above {AppContext.BaseDirectory}.");
    }

    private static string Tail(string path)
    {
        string[] lines = File.Exists(path) ? File.ReadAllLines(path) : [];
        return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - 40)));
    }
}
