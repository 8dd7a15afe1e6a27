namespace XNet.MLNet.Onnx;

/// <summary>
/// The names and versions an exported X-Net ONNX file uses (see <see cref="XNetModelFile.ExportOnnx(XNetModelParameters, Stream)"/> and
/// docs/onnx.md): its input and output tensors and its metadata keys.
/// </summary>
public static class XNetOnnx
{
    /// <summary>The ONNX operator set the graph imports (default domain).</summary>
    public const int Opset = 17;

    /// <summary>The ONNX IR version written.</summary>
    public const int IrVersion = 8;

    /// <summary>The symbolic batch dimension of every input and output.</summary>
    public const string BatchDimension = "batch";

    /// <summary>Input: float32 (batch, C, H, W), raw pixels (0-255); the normalisation is inside the graph.</summary>
    public const string Input = "input";

    /// <summary>Output: float32 (batch, classes), the network's logits.</summary>
    public const string Logits = "logits";

    /// <summary>Output: float32 (batch, classes), softmax of the logits (slot i is class i).</summary>
    public const string Score = "Score";

    /// <summary>Output: uint32 (batch), the index of the largest logit (0-based class index).</summary>
    public const string PredictedIndex = "PredictedIndex";

    /// <summary>Metadata key: the zoo architecture name.</summary>
    public const string ArchitectureKey = "xnet.architecture";

    /// <summary>Metadata key: the model seed the expander graphs were drawn from.</summary>
    public const string SeedKey = "xnet.seed";

    /// <summary>Metadata key: the input shape as a JSON array [C, H, W].</summary>
    public const string InputShapeKey = "xnet.input_shape";

    /// <summary>Metadata key: the per-channel mean the graph subtracts, a JSON array.</summary>
    public const string MeanKey = "xnet.mean";

    /// <summary>Metadata key: the per-channel standard deviation the graph divides by, a JSON array.</summary>
    public const string StdKey = "xnet.std";

    /// <summary>Metadata key: the class names in score order, a JSON array of strings.</summary>
    public const string ClassNamesKey = "xnet.class_names";

    /// <summary>Metadata key: the version of XNet.MLNet that wrote the file.</summary>
    public const string LibraryVersionKey = "xnet.library_version";
}
