using Spectre.Console;

namespace XNet.Cli.Tests;

/// <summary>Runs <c>xnet</c> in-process with its console captured as plain text.</summary>
internal static class XNetRunner
{
    public static (int ExitCode, string Output) Run(params string[] args)
    {
        var writer = new StringWriter();
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        AnsiConsole.Profile.Width = 4096; // no wrapping: assertions see whole lines
        int exitCode = XNetApp.Run(args);
        return (exitCode, writer.ToString());
    }
}
