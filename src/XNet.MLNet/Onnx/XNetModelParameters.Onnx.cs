using XNet.Architectures.Export;
using XNet.Architectures.Export.Onnx;
using XNet.MLNet.IO;
using XNet.MLNet.Onnx;

namespace XNet.MLNet;

public sealed partial class XNetModelParameters
{
    /// <summary>
    /// Writes the network as an ONNX model (opset 17) to <paramref name="stream"/> (left open). Input
    /// <c>input</c>: float32 (batch, C, H, W) raw pixels, the normalisation is inside the graph; outputs <c>logits</c>,
    /// <c>Score</c> (softmax) and <c>PredictedIndex</c> (uint32 argmax); the batch dimension
    /// is symbolic. BatchNorm is folded into the convolution before it where there is one; expander layers are written as
    /// their exact dense-weight equivalent. Metadata: architecture, seed, input shape, mean/std, class names (JSON) and
    /// the library version (keys in <see cref="XNetOnnx"/>). See docs/onnx.md.
    /// </summary>
    /// <exception cref="NotSupportedException">When a layer has no ONNX export; the message names the layer.</exception>
    internal void ExportOnnx(Stream stream) => ExportOnnx(stream, OnnxModelWriter.DefaultExpanderForm);

    /// <summary>Writes the ONNX model (see <see cref="ExportOnnx(Stream)"/>) to <paramref name="path"/> atomically (a temporary file beside it, then a rename).</summary>
    /// <exception cref="NotSupportedException">When a layer has no ONNX export; the message names the layer.</exception>
    internal void ExportOnnx(string path) => AtomicFile.Write(path, stream => ExportOnnx(stream));

    /// <summary>Writes the ONNX model with expander convolutions in the given form (for measurements and tests).</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="expanderForm">How expander convolutions are written.</param>
    /// <param name="embedModel">Also store this model's own file (<see cref="Save(Stream)"/>, base64) in the metadata under
    /// <see cref="Persistence.MlNetChain.EmbeddedModelKey"/>, so that training can continue from the ONNX-based ML.NET zip.</param>
    /// <param name="affineHead">An extra output for ML.NET's scorer (see <see cref="Persistence.MlNetChain"/>).</param>
    internal void ExportOnnx(Stream stream, ExpanderConvForm expanderForm, bool embedModel = false, AffineHead? affineHead = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ObjectDisposedException.ThrowIf(disposed, this);
        ModelProto onnx;
        lock (inferenceGate)
        {
            onnx = OnnxModelWriter.Build(this, expanderForm, affineHead);
        }

        if (embedModel)
        {
            using var own = new MemoryStream();
            Save(own);
            onnx.MetadataProps.Add(new StringStringEntryProto
            {
                Key = Persistence.MlNetChain.EmbeddedModelKey,
                Value = Convert.ToBase64String(own.GetBuffer(), 0, (int)own.Length),
            });
        }

        OnnxModelWriter.Write(onnx, stream);
    }
}
