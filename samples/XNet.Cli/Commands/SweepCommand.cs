using System.ComponentModel;
using Microsoft.ML;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Architectures;
using XNet.Cli.Display;
using XNet.MLNet.Experiments;

namespace XNet.Cli.Commands;

/// <summary>
/// <c>xnet sweep PLAN</c>: runs an experiment plan (models x seeds, one recipe) with the library's runner, resuming where
/// an earlier sitting stopped, then writes results.csv, results.md and the accuracy-against-cost plots.
/// </summary>
internal sealed class SweepCommand : Command<SweepCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<PLAN>")]
        [Description("The experiment plan, a JSON or YAML (.yaml, .yml) file: name, data, models, seeds, recipe, optional trainLimit/testLimit (docs/results.md).")]
        public string Plan { get; init; } = "";

        [CommandOption("--output-dir <DIR>")]
        [Description("Where the run folders and results go. Default: a folder named after the plan file, beside it.")]
        public string? OutputDir { get; init; }

        [CommandOption("--report")]
        [Description("Train nothing: write results.csv, results.md and the plots of the runs finished so far.")]
        public bool Report { get; init; }

        [CommandOption("--device <DEVICE>")]
        [Description("auto (default), cpu, cuda or cuda:N.")]
        public string? Device { get; init; }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var plan = ExperimentPlan.Load(settings.Plan);
        string output = settings.OutputDir
                        ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(settings.Plan))!, Path.GetFileNameWithoutExtension(settings.Plan));
        var mlContext = new MLContext(seed: 0);
        // The trainer's epoch lines, so a run of many minutes shows its progress.
        mlContext.Log += (_, e) =>
        {
            if (e.Message.Contains("X-Net epoch ", StringComparison.Ordinal))
            {
                AnsiConsole.WriteLine("  " + e.Message[(e.Message.IndexOf("X-Net epoch ", StringComparison.Ordinal) + 6)..]);
            }
        };
        // An image folder is read at the recipe's image size when it gives one, else at the first model family's reference
        // size (32x32 for the CIFAR families); its pixel column then declares that shape, so the recipe need not.
        var recipe = plan.Recipe;
        var folderShape = recipe.ImageHeight is int height && recipe.ImageWidth is int width
            ? new ImageShape(recipe.ImageChannels ?? 3, height, width)
            : ModelZoo.FamilyOf(plan.Models[0]).Input;
        if (DatasetSource.IsImageFolder(plan.Data))
        {
            (recipe.ImageChannels, recipe.ImageHeight, recipe.ImageWidth) = (null, null, null);
        }

        var train = DatasetSource.Load(mlContext, plan.Data, "train", folderShape, skipUnreadable: false);
        var test = DatasetSource.Load(mlContext, plan.Data, "test", train.Shape, skipUnreadable: false);
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet sweep[/] {plan.Name}: {plan.Models.Count} models x {plan.Seeds.Count} seeds, {plan.Recipe.Epoch} epochs each, on {plan.Data ?? DatasetSource.Embedded} ({train.Shape}) -> {output} (build {XNetApp.Version})");
        try
        {
            ExperimentRunner.Run(mlContext, plan, train.Data, test.Data, output, settings.Device, line => AnsiConsole.WriteLine(line),
                cancellationToken, trainMissing: !settings.Report,
                publish: results => ExperimentPlot.Write(ExperimentRunner.Summarize(results), plan.Name, output));
        }
        catch (OperationCanceledException ex) when (!settings.Report)
        {
            // The trainer names the run's checkpoints folder; a sweep goes on by running the same command again.
            string stopped = System.Text.RegularExpressions.Regex.Replace(ex.Message, @" Resume from '[^']*'\.$", "");
            throw new OperationCanceledException(
                $"{stopped} Continue with: xnet sweep {settings.Plan}{(settings.OutputDir is null ? "" : $" --output-dir {settings.OutputDir}")} " +
                "(finished runs are skipped, this one resumes).", ex);
        }

        AnsiConsole.WriteLine(File.ReadAllText(Path.Combine(output, "results.md")));
        AnsiConsole.MarkupLineInterpolated($"Results in {output}: results.csv, results.md, {ExperimentPlot.MacsFile}, {ExperimentPlot.ParametersFile}");
        return 0;
    }
}
