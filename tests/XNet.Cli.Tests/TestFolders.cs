namespace XNet.Cli.Tests;

/// <summary>A fresh folder per test under the system temp folder.</summary>
internal static class TestFolders
{
    public static string Create(TestContext context)
    {
        string path = Path.Combine(Path.GetTempPath(), "xnet-cli-tests", context.TestName!, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}
