using Spectre.Console;
using Spectre.Console.Cli;

namespace XNet.Cli;

/// <summary>Turns expected failures (bad options, files, data) into one red line and an exit code instead of a stack trace.</summary>
internal static class CliErrors
{
    public static int Run(Func<int> command)
    {
        try
        {
            return command();
        }
        catch (OperationCanceledException ex)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]Cancelled:[/] {ex.Message}");
            return 130;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or CommandAppException
                                       or NotSupportedException or UnauthorizedAccessException or InvalidDataException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {ex.Message}");
            return ex is CommandAppException or UsageException ? 2 : 1;
        }
    }
}

/// <summary>A command line that cannot run as given (exit code 2), found after parsing: an option out of the trainer's range, or one a resumed run cannot take.</summary>
internal sealed class UsageException(string message, Exception? inner = null) : ArgumentException(message, inner);
