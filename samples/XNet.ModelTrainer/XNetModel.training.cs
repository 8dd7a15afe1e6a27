using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Data;

namespace XNet.ModelConsumer;

/// <summary>
/// The training code Model Builder generates beside the consumption code (MLModel1.training.cs: Train, RetrainModel,
/// BuildPipeline, SaveModel), with the X-Net trainer where Model Builder puts ImageClassification. The saved pipeline
/// starts from a decoded image column, so XNetModel.consumption.cs can feed it images decoded from uploaded bytes.
/// </summary>
public partial class XNetModel
{
    /// <summary>The model's input: 28x28 grayscale, the size of the embedded Fashion-MNIST images.</summary>
    public static readonly ImageShape InputShape = new(1, 28, 28);

    /// <summary>Trains on an image folder (one sub-folder per class) and saves the ML.NET zip to <paramref name="outputModelPath"/>.</summary>
    public static void Train(string outputModelPath, string imageFolderPath)
    {
        var mlContext = new MLContext(seed: 1);
        var data = LoadImageFolder(mlContext, imageFolderPath);
        var model = RetrainModel(mlContext, data);
        SaveModel(mlContext, model, data, outputModelPath);
    }

    /// <summary>Label (the class folder's name), ImagePath and Image (decoded by ML.NET's LoadImages) for every image under the folder.</summary>
    public static IDataView LoadImageFolder(MLContext mlContext, string imageFolderPath)
    {
        var rows = Directory.GetDirectories(imageFolderPath).Order(StringComparer.Ordinal)
            .SelectMany(classFolder => Directory.EnumerateFiles(classFolder, "*", SearchOption.AllDirectories)
                .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" or ".bmp")
                .Order(StringComparer.Ordinal)
                .Select(f => new ImageFile { Label = Path.GetFileName(classFolder), ImagePath = f }))
            .ToArray();
        var paths = mlContext.Data.LoadFromEnumerable(rows);
        return mlContext.Transforms.LoadImages("Image", null, "ImagePath").Fit(paths).Transform(paths);
    }

    /// <summary>Saves the trained pipeline as an ML.NET zip that Model.Load reads without X-Net.</summary>
    public static void SaveModel(MLContext mlContext, ITransformer model, IDataView data, string modelSavePath) =>
        XNetModelFile.SaveMLNet(mlContext, model, data.Schema, modelSavePath);

    /// <summary>Fits <see cref="BuildPipeline"/> on <paramref name="trainData"/> (columns Label and Image).</summary>
    public static ITransformer RetrainModel(MLContext mlContext, IDataView trainData) => BuildPipeline(mlContext).Fit(trainData);

    /// <summary>Image -> pixels -> X-Net -> class name, as Model Builder builds its image classification pipeline.</summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext mlContext) =>
        ImageFileInput.CreateImagePipeline(mlContext, InputShape, imageColumnName: "Image", outputColumnName: "Features")
            .Append(mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "Label", inputColumnName: "Label"))
            .Append(mlContext.MulticlassClassification.Trainers.XNet(new XNetTrainer.Options
            {
                LabelColumnName = "Label",
                FeatureColumnName = "Features",
                Architecture = "x-resnet-8-2",
                Epoch = 5,
                BatchSize = 16,
                LearningRate = 0.05f,
                Device = "cpu",
            }))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue(outputColumnName: "PredictedLabel", inputColumnName: "PredictedLabel"));

    private sealed class ImageFile
    {
        public string Label { get; set; } = "";

        public string ImagePath { get; set; } = "";
    }
}
