using Spectre.Console;
using Spectre.Console.Cli;

namespace XNet.Cli;

/// <summary>
/// Turns every failure into one red line and an exit code instead of a stack trace: bad options, files and data (1, or 2
/// for usage), and anything unexpected (1, naming its kind); <c>--verbose</c> adds the stack trace.
/// </summary>
internal static class CliErrors
{
    public static int Run(Func<int> command, bool verbose, IReadOnlyList<string>? args = null)
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
            string message = ConversionFailure(ex, args ?? []) ?? ex.Message;
            AnsiConsole.MarkupLineInterpolated(
                $"[red]error:[/] {(expected ? "" : ex.GetType().Name + ": ")}{message.ReplaceLineEndings(" ")}");
            if (verbose)
            {
                AnsiConsole.WriteLine(ex.ToString());
            }

            return ex is CommandAppException or UsageException ? 2 : 1;
        }
    }

    /// <summary>
    /// Spectre's "Failed to convert 'abc' to Single." with the flag that was given the value (<c>--lr: 'abc' is not a
    /// number.</c>), or null for any other failure.
    /// </summary>
    private static string? ConversionFailure(Exception ex, IReadOnlyList<string> args)
    {
        var match = System.Text.RegularExpressions.Regex.Match(ex.Message, @"^Failed to convert '(?<value>.*)' to (?<type>\w+)\.$");
        if (ex is not CommandRuntimeException || !match.Success)
        {
            return null;
        }

        string value = match.Groups["value"].Value;
        string expected = match.Groups["type"].Value switch
        {
            "Single" or "Double" or "Decimal" => "a number",
            "Int32" or "Int64" or "Int16" or "UInt32" or "UInt64" => "a whole number",
            "Boolean" => "true or false",
            var type => $"a {type}",
        };
        string? flag = null;
        for (int i = 0; i < args.Count && flag is null; i++)
        {
            if (args[i].EndsWith("=" + value, StringComparison.Ordinal) && args[i].StartsWith('-'))
            {
                flag = args[i][..args[i].IndexOf('=')];
            }
            else if (args[i] == value && i > 0 && args[i - 1].StartsWith('-'))
            {
                flag = args[i - 1];
            }
        }

        return $"{(flag is null ? "" : flag + ": ")}'{value}' is not {expected}.";
    }
}

/// <summary>A command line that cannot run as given (exit code 2), found after parsing: an option out of the trainer's range, or one a resumed run cannot take.</summary>
internal sealed class UsageException(string message, Exception? inner = null) : ArgumentException(message, inner);
