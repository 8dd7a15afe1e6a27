using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.ModelConsumer;

/// <summary>
/// The consumption code Model Builder generates (MLModel1.consumption.cs: ModelInput, ModelOutput, a lazy
/// PredictionEngine and a static Predict) for a model saved by samples/scripts/train-image-folder.cs: an image path in,
/// the class name and the class probabilities out.
/// </summary>
public partial class XNetModel
{
    /// <summary>Model input: the image file to classify.</summary>
    public class ModelInput
    {
        /// <summary>Path of a PNG, JPEG or BMP image.</summary>
        [ColumnName(@"ImagePath")]
        public string ImagePath { get; set; } = "";
    }

    /// <summary>Model output.</summary>
    public class ModelOutput
    {
        /// <summary>The predicted class name.</summary>
        [ColumnName(@"PredictedLabel")]
        public string PredictedLabel { get; set; } = "";

        /// <summary>The probability of each class, in the order of the model's classes.</summary>
        [ColumnName(@"Score")]
        public float[] Score { get; set; } = [];
    }

    /// <summary>The model file; set it before the first <see cref="Predict"/>.</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("XNetModel.zip");

    /// <summary>The prediction engine, created on first use.</summary>
    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, true);

    /// <summary>Predicts the class of <paramref name="input"/>.</summary>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(mlModel);
    }
}
