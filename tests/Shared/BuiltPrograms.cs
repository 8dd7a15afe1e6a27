using System.Diagnostics;

namespace XNet.Tests.Shared;

/// <summary>
/// The repository's built programs (samples, probes), run as a user runs them: <c>dotnet program.dll args</c> in a child
/// process. Paths follow the test assembly's own folder, <c>tests/&lt;project&gt;/bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c>.
/// </summary>
internal static class BuiltPrograms
{
    private static readonly DirectoryInfo TestDirectory = new(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));

    /// <summary>The repository root.</summary>
    public static string RepositoryRoot => Path.GetFullPath(Path.Combine(TestDirectory.FullName, "..", "..", "..", "..", ".."));

    /// <summary>The built <c>&lt;project&gt;.dll</c> of the project at <paramref name="folder"/>/<paramref name="project"/>, in this test run's configuration.</summary>
    public static string Dll(string folder, string project) =>
        Path.Combine(RepositoryRoot, folder, project, "bin", TestDirectory.Parent!.Name, TestDirectory.Name, project + ".dll");

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/> and waits for it.</summary>
    public static (int ExitCode, string Output, string Errors) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, errors.Result);
    }
}
