using System.ComponentModel;
using Microsoft.ML;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.MLNet;
using XNet.MLNet.Data;

namespace XNet.Cli.Commands;

/// <summary><c>xnet predict</c>: one image file through ML.NET's image transforms and a saved X-Net.</summary>
internal sealed class PredictCommand : Command<PredictCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <FILE>")]
        [Description("A model saved by 'xnet train' (model.xnet in its run folder) or an ML.NET zip with an X-Net (told apart by content).")]
        [DefaultValue("xnet-run/model.xnet")]
        public string Model { get; init; } = "xnet-run/model.xnet";

        [CommandOption("--image <FILE>")]
        [Description("The image (PNG, JPEG, BMP); resized to the model's input, grayscale for one-channel models.")]
        public string? Image { get; init; }

        [CommandOption("--top <K>")]
        [Description("How many classes to list.")]
        [DefaultValue(3)]
        public int Top { get; init; } = 3;

        public override ValidationResult Validate() =>
            string.IsNullOrWhiteSpace(Image) ? ValidationResult.Error("--image is required") : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string image = Path.GetFullPath(settings.Image!);
        var mlContext = new MLContext();
        using var model = SavedModel.Load(mlContext, settings.Model);
        var probabilities = ImageFileInput.Score(mlContext, model.Transformer, model.InputShape, image);
        var ranked = probabilities.Select((p, i) => (Class: model.ClassNames[i], Probability: p))
            .OrderByDescending(x => x.Probability).Take(Math.Max(1, settings.Top)).ToArray();

        AnsiConsole.MarkupLineInterpolated($"[bold]{ranked[0].Class}[/] ({ranked[0].Probability:P1})  [grey]{image}[/]");
        var table = new Table().AddColumns("class", "probability");
        foreach (var (name, probability) in ranked)
        {
            table.AddRow(name.EscapeMarkup(), $"{probability:P2}");
        }

        AnsiConsole.Write(table);
        return 0;
    }
}
