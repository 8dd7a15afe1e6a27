using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Architectures;

namespace XNet.Cli.Commands;

/// <summary><c>xnet models</c>: the zoo's registered variants with effective parameters and MACs at their reference input.</summary>
internal sealed class ModelsCommand : Command<ModelsCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "[FILTER]")]
        [Description("Only names containing this text (e.g. densenet-bc, x-resnet-50).")]
        public string? Filter { get; init; }

        [CommandOption("--classes <N>")]
        [Description("Class count the costs are for (default: the family's, 10 for CIFAR models, 1000 for ImageNet models).")]
        public int? Classes { get; init; }

        [CommandOption("--input <CxHxW>")]
        [Description("Input shape the costs are for, e.g. 1x28x28 (default: the family's, 3x32x32 or 3x224x224).")]
        public string? Input { get; init; }

        public override ValidationResult Validate() => ValidateShape(Input, Classes) ?? ValidationResult.Success();

        /// <summary>The error of an <c>--input</c> or <c>--classes</c> value (this command's and <c>xnet bench</c>'s), or null.</summary>
        internal static ValidationResult? ValidateShape(string? input, int? classes) =>
            classes is < 2 or > ModelZoo.MaxClasses ? ValidationResult.Error($"--classes must be from 2 to {ModelZoo.MaxClasses:N0}")
            : input is not null && ParseShape(input) is null ? ValidationResult.Error(
                $"--input '{input}' is not CxHxW with 1-{ImageShape.MaxChannels} channels and sides of 1-{ImageShape.MaxSide}, e.g. 3x32x32")
            : null;

        internal static ImageShape? ParseShape(string text)
        {
            var parts = text.Split('x');
            return parts.Length == 3 && parts.All(p => int.TryParse(p, out int v) && v > 0)
                   && new ImageShape(int.Parse(parts[0]), int.Parse(parts[1]), int.Parse(parts[2])) is var shape
                   && shape.Channels <= ImageShape.MaxChannels && shape.Height <= ImageShape.MaxSide && shape.Width <= ImageShape.MaxSide
                ? shape
                : null;
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var denseMacs = new Dictionary<string, long>();
        string? filter = settings.Filter?.Trim().ToLowerInvariant();
        int shown = 0;
        foreach (var family in ModelZoo.ModelFamilies)
        {
            var input = settings.Input is null ? family.Input : Settings.ParseShape(settings.Input)!;
            int classes = settings.Classes ?? family.Classes;
            var names = family.Variants.Where(n => filter is null || n.Contains(filter, StringComparison.Ordinal)).ToList();
            if (filter is not null && !names.Contains(filter) && family.Parse(filter) is not null)
            {
                names.Add(filter); // a name the family builds without listing it (x-resnet-8-2, resnet-26)
            }

            if (names.Count == 0)
            {
                continue;
            }

            shown += names.Count;

            var table = new Table().Title($"{family.Name}, input {input}, {classes} classes").Caption(Suits(family)).AddColumn("name")
                .AddColumn(new TableColumn("parameters").RightAligned())
                .AddColumn(new TableColumn("MACs").RightAligned())
                .AddColumn(new TableColumn("MACs vs dense").RightAligned());
            foreach (string name in names)
            {
                ModelCost cost;
                try
                {
                    cost = Measure(name, input, classes);
                }
                catch (ArgumentException ex)
                {
                    table.AddRow(name, $"[grey]{ex.Message.EscapeMarkup()}[/]", "", "");
                    continue;
                }

                string twin = ModelZoo.DenseTwinOf(name);
                if (!denseMacs.TryGetValue(twin, out long dense))
                {
                    dense = twin == name ? cost.MultiplyAccumulates : Measure(twin, input, classes).MultiplyAccumulates;
                    denseMacs[twin] = dense;
                }

                table.AddRow(name, $"{cost.Parameters:N0}", $"{cost.MultiplyAccumulates / 1e6:N1} M",
                    $"{(double)cost.MultiplyAccumulates / dense:P0}");
            }

            AnsiConsole.Write(table);
        }

        if (shown == 0)
        {
            AnsiConsole.MarkupLineInterpolated(
                $"[red]error:[/] no architecture matches '{settings.Filter}': it is not part of a listed name, nor a name a family builds. 'xnet models' lists them all.");
            return 1;
        }

        AnsiConsole.MarkupLine(
            "Effective counts: expander and grouped layers count only present connections; MACs of one image's forward pass (convolutions and linear layers).");
        return 0;
    }

    /// <summary>What a family suits, by image size (docs/models.md, "Which model for your images", has measured speeds).</summary>
    private static string Suits(ModelFamily family) => family.Input.Height <= 32
        ? "for small images (under 64 pixels, read at 32x32), from a few thousand images up"
        : "for photos at 64-224 pixels (--input 3x96x96, say): the stem divides the input by 4; MobileNets train fastest on a CPU";

    private static ModelCost Measure(string name, ImageShape input, int classes)
    {
        using var model = ModelZoo.Create(name, input, classes, seed: 0);
        return ModelCost.Measure(model, input);
    }
}
