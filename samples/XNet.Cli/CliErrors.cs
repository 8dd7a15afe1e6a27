using Spectre.Console;
using Spectre.Console.Cli;

namespace XNet.Cli;

/// <summary>
/// Turns every failure into one red line and an exit code instead of a stack trace: bad options, files and data (1, or 2
/// for usage), and anything unexpected (1, naming its kind); <c>--verbose</c> adds the stack trace.
/// </summary>
internal static class CliErrors
{
    public static int Run(Func<int> command, bool verbose)
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
        catch (Exception ex)
        {
            // The library's own failures say what was wrong; anything else also names its kind.
            bool expected = ex is ArgumentException or InvalidOperationException or IOException or CommandAppException
                or NotSupportedException or UnauthorizedAccessException or InvalidDataException;
            AnsiConsole.MarkupLineInterpolated(
                $"[red]error:[/] {(expected ? "" : ex.GetType().Name + ": ")}{ex.Message.ReplaceLineEndings(" ")}");
            if (verbose)
            {
                AnsiConsole.WriteLine(ex.ToString());
            }

            return ex is CommandAppException or UsageException ? 2 : 1;
        }
    }
}

/// <summary>A command line that cannot run as given (exit code 2), found after parsing: an option out of the trainer's range, or one a resumed run cannot take.</summary>
internal sealed class UsageException(string message, Exception? inner = null) : ArgumentException(message, inner);
