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
            return ex is CommandAppException ? 2 : 1;
        }
    }
}
