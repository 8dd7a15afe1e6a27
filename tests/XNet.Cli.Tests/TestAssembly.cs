namespace XNet.Cli.Tests;

/// <summary>
/// Gives this test process, and the <c>xnet</c> processes it starts, a temporary folder of its own (TMPDIR), removed when
/// the tests end: the folders the tests write, and the decoded-image caches <c>xnet</c> keeps for every image folder
/// it reads (<c>xnet-image-cache</c> in the temporary folder), would otherwise pile up run after run.
/// </summary>
[TestClass]
public static class TestAssembly
{
    private static string? temporary;

    [AssemblyInitialize]
    public static void UseOwnTemporaryFolder(TestContext _)
    {
        temporary = Directory.CreateTempSubdirectory("xnet-cli-tests-").FullName;
        Environment.SetEnvironmentVariable("TMPDIR", temporary);
    }

    [AssemblyCleanup]
    public static void RemoveTemporaryFolder()
    {
        if (temporary is not null && Directory.Exists(temporary))
        {
            Directory.Delete(temporary, recursive: true);
        }
    }
}
