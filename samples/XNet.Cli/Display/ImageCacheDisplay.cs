using Spectre.Console;
using XNet.MLNet.Data;

namespace XNet.Cli.Display;

/// <summary>
/// Progress of decoding an image folder into its cache: a bar on an interactive terminal, a line every tenth of the way
/// when the output is redirected; one line when the cache is reused.
/// </summary>
internal static class ImageCacheDisplay
{
    public static T Run<T>(string what, Func<IProgress<ImageFolderProgress>, T> load)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            int shown = -1;
            return load(new Reporter(p =>
            {
                int tenth = p.Total == 0 ? 10 : (int)(10L * p.Done / p.Total);
                if (p.Reused)
                {
                    Console.WriteLine($"{what}: {p.Total:N0} images, decoded before (cached)");
                }
                else if (tenth != shown)
                {
                    shown = tenth;
                    Console.WriteLine($"decoding {what}: {p.Done:N0}/{p.Total:N0} images");
                }
            }));
        }

        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask($"decoding {what}", maxValue: 1);
                result = load(new Reporter(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                    if (p.Reused)
                    {
                        task.Description = $"{what}: {p.Total:N0} images, decoded before (cached)";
                    }
                }));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>Reports on the caller's thread (System.Progress would post to the thread pool, out of order).</summary>
    private sealed class Reporter(Action<ImageFolderProgress> report) : IProgress<ImageFolderProgress>
    {
        public void Report(ImageFolderProgress value) => report(value);
    }
}
