using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet;

namespace XNet.Cli.Commands;

/// <summary>
/// A model file the CLI scores, told apart by content: an X-Net file (scored with TorchSharp) or an ML.NET zip with an X-Net
/// in it (loaded with <c>mlContext.Model.Load</c>, scored by ONNX Runtime; its architecture, input shape and class names
/// come from the ONNX metadata).
/// </summary>
internal sealed record SavedModel(string Description, ImageShape InputShape, IReadOnlyList<string> ClassNames, ITransformer Transformer)
    : IDisposable
{
    public static SavedModel Load(MLContext mlContext, string path)
    {
        if (XNetModelFile.Detect(path) != XNetModelFileKind.MLNet)
        {
            var model = new XNetTransformer(XNetModelFile.Load(path));
            return new(model.Model.Architecture, model.Model.InputShape, model.Model.ClassNames, model);
        }

        var (architecture, shape, classNames) = XNetModelFile.ReadMLNetInfo(path);
        var transformer = mlContext.Model.Load(path, out var inputSchema);
        if (inputSchema.GetColumnOrNull("Features") is null)
        {
            (transformer as IDisposable)?.Dispose();
            throw new InvalidDataException(
                $"ML.NET model '{path}' does not take a 'Features' column (its input columns: {string.Join(", ", inputSchema.Select(c => c.Name))}); " +
                "the CLI scores zips written by 'xnet export --mlnet' or pipelines that start from the Features pixel vector.");
        }

        // The CLI gives a model its pixels only: a pipeline that also reads another column (a MapValueToKey("Label") saved
        // in front of the trainer, say) is told apart here rather than failing on the first image.
        var featuresOnly = new DataViewSchema.Builder();
        featuresOnly.AddColumn("Features", inputSchema["Features"].Type, inputSchema["Features"].Annotations);
        try
        {
            transformer.GetOutputSchema(featuresOnly.ToSchema());
        }
        catch (ArgumentOutOfRangeException ex) when (ex.Message.Contains("Could not find input column", StringComparison.Ordinal))
        {
            (transformer as IDisposable)?.Dispose();
            string other = System.Text.RegularExpressions.Regex.Match(ex.Message, "column '([^']*)'").Groups[1].Value;
            throw new InvalidDataException(
                $"ML.NET model '{path}' reads input column '{other}' besides 'Features' (its pipeline transforms it, e.g. a MapValueToKey " +
                "saved in front of the trainer); the CLI gives a model its pixels only. Save the trained X-Net transformer alone, or " +
                "write the zip with 'xnet export --mlnet'.", ex);
        }

        return new($"{architecture} (ML.NET zip, ONNX Runtime)", shape, classNames, transformer);
    }

    public void Dispose() => (Transformer as IDisposable)?.Dispose();
}
