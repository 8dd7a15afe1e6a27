namespace XNet.Cli.Tests;

/// <summary>A fresh folder per test under the test process's temporary folder (<see cref="TestAssembly"/>).</summary>
internal static class TestFolders
{
    public static string Create(TestContext context)
    {
        string path = Path.Combine(Path.GetTempPath(), "xnet-cli-tests", context.TestName!, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}
