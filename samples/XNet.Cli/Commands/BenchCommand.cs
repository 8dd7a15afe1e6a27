using System.ComponentModel;
using System.Globalization;
using System.Text.RegularExpressions;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Architectures;
using XNet.MLNet.Training;

namespace XNet.Cli.Commands;

/// <summary>
/// <c>xnet bench</c>: training and scoring images/s of a model and its dense twin on this machine, measured side by side
/// in interleaved rounds on synthetic batches, as medians with their range and the median of the per-round ratios.
/// </summary>
internal sealed partial class BenchCommand : Command<BenchCommand.Settings>
{
    public sealed partial class Settings : CommandSettings
    {
        [CommandArgument(0, "[MODEL]")]
        [Description("A zoo name (xnet models lists them). Default: x-resnet-20-4.")]
        public string Model { get; init; } = "x-resnet-20-4";

        [CommandOption("--twin <NAME>")]
        [Description("The model to compare against. Default: the dense twin (x-resnet-20-4 -> resnet-20); none for a dense model.")]
        public string? Twin { get; init; }

        [CommandOption("--input <CxHxW>")]
        [Description("Input shape, e.g. 1x28x28 or 3x96x96. Default: the family's (3x32x32 or 3x224x224).")]
        public string? Input { get; init; }

        [CommandOption("--classes <N>")]
        [Description("Class count. Default: the family's (10 or 1000).")]
        public int? Classes { get; init; }

        [CommandOption("--batch-size <N>")]
        [Description("Images per training step and per scored batch.")]
        [DefaultValue(128)]
        public int BatchSize { get; init; } = 128;

        [CommandOption("--rounds <N>")]
        [Description("Rounds; in each, every model trains and scores in turn, so both see the same machine. The figures are medians over rounds.")]
        [DefaultValue(5)]
        public int Rounds { get; init; } = 5;

        [CommandOption("--steps <N>")]
        [Description("Training steps and scored batches per model and round (after 2 untimed ones).")]
        [DefaultValue(5)]
        public int Steps { get; init; } = 5;

        [CommandOption("--device <DEVICE>")]
        [Description("cpu, cuda or cuda:N. Default: cuda when a CUDA device is present, else cpu.")]
        public string? Device { get; init; }

        public override ValidationResult Validate() =>
            ModelsCommand.Settings.ValidateShape(Input, Classes) is { } shapeError ? shapeError
            : BatchSize is < 1 or > 4096 ? ValidationResult.Error($"--batch-size {BatchSize} must be from 1 to 4,096")
            : Rounds is < 1 or > 1000 ? ValidationResult.Error($"--rounds {Rounds} must be from 1 to 1,000")
            : Steps is < 1 or > 1000 ? ValidationResult.Error($"--steps {Steps} must be from 1 to 1,000")
            : Device is not null && !DevicePattern().IsMatch(Device) ? ValidationResult.Error($"--device '{Device}' must be cpu, cuda or cuda:N")
            : ValidationResult.Success();

        [GeneratedRegex(@"^(cpu|cuda(:\d{1,3})?)$", RegexOptions.IgnoreCase)]
        private static partial Regex DevicePattern();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string twin;
        try
        {
            ModelZoo.EnsureKnown(settings.Model, "MODEL");
            twin = settings.Twin ?? ModelZoo.DenseTwinOf(settings.Model);
            ModelZoo.EnsureKnown(twin, "--twin");
        }
        catch (ArgumentException ex)
        {
            throw new UsageException(ex.Message, ex); // an unknown name is a bad argument (exit code 2), as elsewhere
        }

        var device = TorchDevices.Resolve(settings.Device);
        var family = ModelZoo.FamilyOf(settings.Model);
        var input = settings.Input is null ? family.Input : ModelsCommand.Settings.ParseShape(settings.Input)!;
        int classes = settings.Classes ?? family.Classes;
        string[] names = twin.Equals(settings.Model, StringComparison.OrdinalIgnoreCase) ? [settings.Model] : [settings.Model, twin];

        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet bench[/]: {string.Join(" and ", names)} at {input}, {classes} classes, batch {settings.BatchSize}, on {device}: {settings.Rounds} rounds of {settings.Steps} training steps and {settings.Steps} scored batches each, on synthetic images");
        var models = new List<ModelSpeed>();
        try
        {
            foreach (string name in names)
            {
                models.Add(new ModelSpeed(name, input, classes, settings.BatchSize, device));
            }

            ModelSpeed.InTurns(models, settings.Rounds, settings.Steps, cancellationToken);
            Report(models);
        }
        finally
        {
            models.ForEach(m => m.Dispose());
        }

        return 0;
    }

    private static void Report(IReadOnlyList<ModelSpeed> models)
    {
        var table = new Table().AddColumn("model").AddColumn(new TableColumn("parameters").RightAligned())
            .AddColumn(new TableColumn("MACs").RightAligned())
            .AddColumn(new TableColumn("training images/s").RightAligned())
            .AddColumn(new TableColumn("scoring images/s").RightAligned());
        foreach (var model in models)
        {
            table.AddRow(model.Name, $"{model.Cost.Parameters:N0}", $"{model.Cost.MultiplyAccumulates / 1e6:N1} M",
                Figure(model.Training), Figure(model.Scoring));
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("Medians over rounds, with the slowest and fastest round in brackets.");
        if (models.Count == 2)
        {
            var (model, twin) = (models[0], models[1]);
            AnsiConsole.MarkupLineInterpolated(
                $"{model.Name} against {twin.Name}: training {Ratio(model.Training, twin.Training)}, scoring {Ratio(model.Scoring, twin.Scoring)} (medians of the per-round ratios)");
        }
    }

    private static string Figure(List<double> perSecond) =>
        string.Create(CultureInfo.InvariantCulture, $"{ModelSpeed.Median(perSecond):N0} ({perSecond.Min():N0}-{perSecond.Max():N0})");

    private static string Ratio(List<double> model, List<double> twin) =>
        string.Create(CultureInfo.InvariantCulture, $"{ModelSpeed.MedianRatio(model, twin):F2}x");
}
