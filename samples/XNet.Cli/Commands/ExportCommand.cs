using System.ComponentModel;
using Microsoft.ML;
using Spectre.Console;
using Spectre.Console.Cli;
using XNet.MLNet;

namespace XNet.Cli.Commands;

/// <summary><c>xnet export</c>: a saved model as an ONNX file and/or an ML.NET model zip that loads without X-Net.</summary>
internal sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--model <FILE>")]
        [Description("A model saved by 'xnet train' (model.xnet) or an ML.NET zip that holds an X-Net.")]
        [DefaultValue("xnet-run/model.xnet")]
        public string Model { get; init; } = "xnet-run/model.xnet";

        [CommandOption("--onnx <FILE>")]
        [Description("Write the network as ONNX (opset 17; input 'input', outputs logits, Score, PredictedIndex).")]
        public string? Onnx { get; init; }

        [CommandOption("--mlnet <FILE>")]
        [Description("Write an ML.NET model zip (mlContext.Model.Load needs only Microsoft.ML, OnnxTransformer and OnnxRuntime).")]
        public string? MLNet { get; init; }

        public override ValidationResult Validate() =>
            Onnx is null && MLNet is null ? ValidationResult.Error("give --onnx FILE, --mlnet FILE or both")
            : Onnx?.Trim() == "" ? ValidationResult.Error("--onnx needs a file name")
            : MLNet?.Trim() == "" ? ValidationResult.Error("--mlnet needs a file name")
            : Onnx is not null && MLNet is not null && Path.GetFullPath(Onnx) == Path.GetFullPath(MLNet)
                ? ValidationResult.Error($"--onnx and --mlnet name the same file ('{Onnx}'); the second would overwrite the first. Give two names.")
            : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        using var model = XNetModelFile.Load(settings.Model, "cpu");
        AnsiConsole.MarkupLineInterpolated(
            $"[bold]xnet export[/]: {model.Architecture}, input {model.InputShape}, {model.NumberOfClasses} classes from [grey]{settings.Model}[/]");
        if (settings.Onnx is string onnx)
        {
            XNetModelFile.ExportOnnx(model, onnx);
            AnsiConsole.MarkupLineInterpolated($"ONNX model written to [green]{onnx}[/] ({new FileInfo(onnx).Length:N0} bytes)");
        }

        if (settings.MLNet is string zip)
        {
            // The transformer would dispose the model; the using above already does.
            var transformer = new XNetTransformer(model);
            XNetModelFile.SaveMLNet(new MLContext(), transformer, zip);
            AnsiConsole.MarkupLineInterpolated($"ML.NET model written to [green]{zip}[/] ({new FileInfo(zip).Length:N0} bytes)");
        }

        return 0;
    }
}
