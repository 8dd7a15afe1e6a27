using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet;

// Usage: dotnet run -c Release --project samples/XNet.PhotoClassifier -- <photo-folder> [model] [size] [epochs] [batch-size]
// <photo-folder>/<class>/*.jpg|jpeg|png|bmp: trains an X-Net (default x-mobilenet-0.5-4 at 96x96, 10 epochs of batches
// of 128) on 80 % of
// the photos, evaluates it on the other 20 %, saves photo-model.zip beside the folder, loads it again as a scoring
// application would and classifies one photo from its bytes. docs/own-images.md explains each step.
if (args.Length is < 1 or > 5)
{
    Console.Error.WriteLine("usage: XNet.PhotoClassifier <photo-folder> [model] [size] [epochs] [batch-size]");
    return 2;
}

string folder = Path.GetFullPath(args[0]);
string architecture = args.Length > 1 ? args[1] : "x-mobilenet-0.5-4";
int size = args.Length > 2 ? int.Parse(args[2]) : 96;
int epochs = args.Length > 3 ? int.Parse(args[3]) : 10;
int batchSize = args.Length > 4 ? int.Parse(args[4]) : 128;
string modelPath = Path.Combine(Path.GetDirectoryName(folder)!, "photo-model.zip");

var ml = new MLContext(seed: 0);
var photos = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".jpg" or ".jpeg" or ".png" or ".bmp")
    .Select(f => new Photo { ImagePath = f, Label = Path.GetFileName(Path.GetDirectoryName(f))! });
var data = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadRawImageBytes("Image", imageFolder: null, "ImagePath"))
    .Fit(ml.Data.LoadFromEnumerable(photos)).Transform(ml.Data.LoadFromEnumerable(photos));
var split = ml.Data.TrainTestSplit(data, testFraction: 0.2, seed: 0);

var pipeline = ml.MulticlassClassification.Trainers.XNet(new XNetTrainer.Options
    {
        FeatureColumnName = "Image",
        Architecture = architecture,
        ImageHeight = size,
        ImageWidth = size,
        Epoch = epochs,
        BatchSize = batchSize,
        ProgressCallback = p => { if (p.Batch == p.Batches) Console.WriteLine($"epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F3}"); },
    })
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(split.TrainSet);

var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
Console.WriteLine($"test: micro-accuracy {metrics.MicroAccuracy:F3}, log-loss {metrics.LogLoss:F3}");
ml.Model.Save(model, split.TrainSet.Schema, modelPath);
Console.WriteLine($"saved {modelPath}");

// A scoring application: a new context, the saved zip, one photo's bytes (the decoding step comes from XNet.MLNet).
var scoring = new MLContext();
scoring.ComponentCatalog.RegisterAssembly(typeof(XNetTrainer).Assembly);
var engine = scoring.Model.CreatePredictionEngine<PhotoBytes, PhotoPrediction>(scoring.Model.Load(modelPath, out _));
string photo = split.TestSet.GetColumn<string>("ImagePath").First();
var prediction = engine.Predict(new PhotoBytes { Image = File.ReadAllBytes(photo) });
Console.WriteLine($"{Path.GetRelativePath(folder, photo)}: {prediction.PredictedLabel} ({prediction.Score.Max():P1})");
return 0;

internal sealed class Photo
{
    public string ImagePath { get; set; } = "";

    public string Label { get; set; } = "";
}

internal sealed class PhotoBytes
{
    public byte[] Image { get; set; } = [];
}

internal sealed class PhotoPrediction
{
    public string PredictedLabel { get; set; } = "";

    public float[] Score { get; set; } = [];
}
