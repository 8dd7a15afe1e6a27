using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.Architectures;

namespace XNet.Cli.Commands;

/// <summary><c>xnet models</c>: the zoo's registered variants and their parameter counts.</summary>
internal sealed class ModelsCommand : Command<ModelsCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--channels <C>")]
        [Description("Input channels the counts are for (default 1, Fashion-MNIST).")]
        [DefaultValue(1)]
        public int Channels { get; init; } = 1;

        [CommandOption("--classes <N>")]
        [Description("Number of classes the counts are for (default 10).")]
        [DefaultValue(10)]
        public int Classes { get; init; } = 10;
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var table = new Table().AddColumn("family").AddColumn("name").AddColumn(new TableColumn("parameters").RightAligned());
        var input = new ImageShape(settings.Channels, 32, 32);
        foreach (var family in ModelZoo.ModelFamilies)
        {
            foreach (string name in family.Variants)
            {
                using var model = ModelZoo.Create(name, input, settings.Classes, seed: 0);
                table.AddRow(family.Name, name, $"{model.parameters().Sum(p => p.numel()):N0}");
            }
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated(
            $"Counts are trainable parameters for {settings.Channels} input channel(s) and {settings.Classes} classes; expander layers count only present connections.");
        return 0;
    }
}
