using System.Text.Json;

namespace XNet.Cli.Commands;

/// <summary>
/// The arguments a run was started with, kept in its run folder (<c>train-args.json</c>) so that
/// <c>xnet train --resume DIR</c> continues it with the same options.
/// </summary>
internal static class RunFolder
{
    public const string ArgumentsFile = "train-args.json";

    /// <summary>Writes the arguments of <c>xnet train</c> into the run folder (temporary file, then rename).</summary>
    public static void SaveArguments(string directory, IEnumerable<string> arguments)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, ArgumentsFile);
        string temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(arguments.ToArray()));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// <c>train --resume DIR [options]</c> becomes <c>train [the run's arguments] --output-dir DIR --resume DIR [options]</c>:
    /// the run's own options first, options given now last (the last occurrence of an option wins). Other command lines
    /// are returned as they are.
    /// </summary>
    public static string[] ExpandResume(string[] args)
    {
        int resume = Array.IndexOf(args, "--resume");
        if (args.Length == 0 || args[0] != "train" || resume < 0 || resume + 1 >= args.Length)
        {
            return args;
        }

        string directory = args[resume + 1];
        string saved = Path.Combine(directory, ArgumentsFile);
        if (!File.Exists(saved))
        {
            return args;
        }

        var original = JsonSerializer.Deserialize<string[]>(File.ReadAllText(saved))
                       ?? throw new InvalidDataException($"'{saved}' holds no argument list.");
        return new[] { "train" }.Concat(original).Concat(new[] { "--output-dir", directory }).Concat(args.Skip(1)).ToArray();
    }
}
