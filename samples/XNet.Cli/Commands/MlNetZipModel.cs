using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet;

namespace XNet.Cli.Commands;

/// <summary>
/// An ML.NET model zip with an X-Net in it, loaded with <c>mlContext.Model.Load</c> (ONNX Runtime scores it; no
/// TorchSharp). Its architecture, input shape and class names come from the ONNX metadata.
/// </summary>
internal sealed class MlNetZipModel : IDisposable
{
    private MlNetZipModel(string architecture, ImageShape inputShape, IReadOnlyList<string> classNames, ITransformer transformer)
    {
        Architecture = architecture;
        InputShape = inputShape;
        ClassNames = classNames;
        Transformer = transformer;
    }

    public string Architecture { get; }

    public ImageShape InputShape { get; }

    public IReadOnlyList<string> ClassNames { get; }

    public ITransformer Transformer { get; }

    /// <summary>Whether <paramref name="path"/> is an ML.NET zip (told by content); .xnet files and anything else are not.</summary>
    public static bool IsMlNetZip(string path) => File.Exists(path) && XNetModelFile.Detect(path) == XNetModelFileKind.MLNet;

    public static MlNetZipModel Load(MLContext mlContext, string path)
    {
        var (architecture, shape, classNames) = XNetModelFile.ReadMLNetInfo(path);
        var transformer = mlContext.Model.Load(path, out var inputSchema);
        if (inputSchema.GetColumnOrNull("Features") is null)
        {
            (transformer as IDisposable)?.Dispose();
            throw new InvalidDataException(
                $"ML.NET model '{path}' does not take a 'Features' column (its input columns: {string.Join(", ", inputSchema.Select(c => c.Name))}); " +
                "the CLI scores zips written by 'xnet export --mlnet' or pipelines that start from the Features pixel vector.");
        }

        return new MlNetZipModel(architecture, shape, classNames, transformer);
    }

    public void Dispose() => (Transformer as IDisposable)?.Dispose();
}
