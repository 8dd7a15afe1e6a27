using System.Diagnostics;

namespace XNet.MLNet.Onnx;

/// <summary>
/// Refuses ML.NET's own <c>mlContext.Model.ConvertToOnnx</c>. That converter reaches a transformer only through an
/// interface internal to ML.NET (ICanSaveOnnx), so it cannot call this library's exporter; given an X-Net pipeline it
/// does not fail but writes a graph in which Score and PredictedLabel are inputs, a silently useless model. ML.NET gives
/// a third-party transformer no other hook, so <see cref="XNetTransformer.Transform"/> looks for the converter on its
/// call stack (once per Transform call, not per row) and throws a message that names the working routes.
/// </summary>
internal static class OnnxConverterGuard
{
    private const string ConverterType = "Microsoft.ML.OnnxExportExtensions";

    /// <exception cref="NotSupportedException">When called from <c>mlContext.Model.ConvertToOnnx</c>.</exception>
    public static void ThrowIfConverting()
    {
        foreach (var frame in new StackTrace(1, fNeedFileInfo: false).GetFrames())
        {
            if (frame.GetMethod()?.DeclaringType?.FullName == ConverterType)
            {
                throw new NotSupportedException(
                    "mlContext.Model.ConvertToOnnx cannot convert a pipeline with an X-Net: ML.NET's converter reaches only its own " +
                    "transformers and would write a graph with Score and PredictedLabel as inputs. Export the network with " +
                    "ExportOnnx (XNetModelFile.ExportOnnx(transformer.Model, \"model.onnx\"), or `xnet export`); mlContext.Model.Save keeps the whole " +
                    "pipeline loadable by ML.NET without X-Net.");
            }
        }
    }
}
