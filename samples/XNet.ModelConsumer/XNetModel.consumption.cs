using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace XNet.ModelConsumer;

/// <summary>
/// The consumption code Model Builder generates for an image classifier (MLModel1.consumption.cs: ModelInput with the
/// image bytes in ImageSource, ModelOutput, a lazy PredictionEngine, Predict and PredictAllLabels) for a model saved by
/// XNetModel.training.cs (samples/XNet.ModelTrainer) or samples/scripts/train-image-folder.cs. It needs ML.NET, its ONNX
/// transformer, ONNX Runtime and ML.NET's image package only: no X-Net, no TorchSharp.
/// </summary>
public partial class XNetModel
{
    /// <summary>Model input: the image, as the bytes of a PNG, JPEG or BMP file (a web upload, say).</summary>
    public class ModelInput
    {
        /// <summary>The true class when known (the saved pipeline maps it; any value will do for prediction).</summary>
        [ColumnName(@"Label")]
        public string Label { get; set; } = "";

        /// <summary>The encoded image.</summary>
        [ColumnName(@"ImageSource")]
        public byte[] ImageSource { get; set; } = [];
    }

    /// <summary>Model output.</summary>
    public class ModelOutput
    {
        /// <summary>The predicted class name.</summary>
        [ColumnName(@"PredictedLabel")]
        public string PredictedLabel { get; set; } = "";

        /// <summary>The probability of each class, in the order of the Score column's slot names.</summary>
        [ColumnName(@"Score")]
        public float[] Score { get; set; } = [];
    }

    /// <summary>The model file; set it before the first <see cref="Predict(ModelInput)"/>.</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("XNetModel.zip");

    /// <summary>The prediction engine, created on first use.</summary>
    public static readonly Lazy<PredictionEngine<ImageInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Predicts the class of an image given as bytes.</summary>
    /// <exception cref="ArgumentException">When the bytes are not an image ML.NET can decode.</exception>
    public static ModelOutput Predict(ModelInput input)
    {
        // ML.NET's image transforms read files, not bytes; MLImage, ML.NET's own image type, decodes the bytes here.
        using var image = MLImage.CreateFromStream(new MemoryStream(input.ImageSource, writable: false));
        return PredictEngine.Value.Predict(new ImageInput { Label = input.Label, Image = image });
    }

    /// <summary>Predicts the class of an image file.</summary>
    public static ModelOutput Predict(string imagePath) => Predict(new ModelInput { ImageSource = File.ReadAllBytes(imagePath) });

    /// <summary>Every class with its probability, most probable first.</summary>
    public static IOrderedEnumerable<KeyValuePair<string, float>> PredictAllLabels(ModelInput input) =>
        GetSortedScoresWithLabels(Predict(input));

    /// <summary>The scores of <paramref name="result"/> paired with the class names, most probable first.</summary>
    public static IOrderedEnumerable<KeyValuePair<string, float>> GetSortedScoresWithLabels(ModelOutput result)
    {
        var labels = GetLabels();
        return labels.Select((label, i) => new KeyValuePair<string, float>(label, result.Score[i])).OrderByDescending(c => c.Value);
    }

    /// <summary>The class names, from the slot names of the Score column.</summary>
    private static string[] GetLabels()
    {
        var column = PredictEngine.Value.OutputSchema.GetColumnOrNull("Score")
            ?? throw new InvalidOperationException("The model has no Score column.");
        var slotNames = new VBuffer<ReadOnlyMemory<char>>();
        column.GetSlotNames(ref slotNames);
        return slotNames.DenseValues().Select(name => name.ToString()).ToArray();
    }

    private static PredictionEngine<ImageInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ImageInput, ModelOutput>(mlModel);
    }

    /// <summary>What the saved pipeline reads: the label and the decoded image.</summary>
    public class ImageInput
    {
        /// <summary>The true class, or any value.</summary>
        [ColumnName(@"Label")]
        public string Label { get; set; } = "";

        /// <summary>The decoded image.</summary>
        /// <remarks>
        /// ML.NET wants a size on an MLImage member (its size-less ImageType throws); images of any size work, since the
        /// saved pipeline resizes them to the model's input.
        /// </remarks>
        [ColumnName(@"Image")]
        [ImageType(28, 28)]
        public MLImage? Image { get; set; }
    }
}
