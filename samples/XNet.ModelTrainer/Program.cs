using XNet.ModelConsumer;

// Usage: dotnet run -c Release --project samples/XNet.ModelTrainer -- <image-folder> <out.zip>
// Trains the Model Builder-style pipeline of XNetModel.training.cs on root/<class>/*.png|jpg|bmp and saves an ML.NET zip
// that samples/XNet.ModelConsumer reads without X-Net; then classifies the first image of each class from its bytes.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: XNet.ModelTrainer <image-folder> <out.zip>");
    return 2;
}

XNetModel.Train(Path.GetFullPath(args[1]), args[0]);
Console.WriteLine($"saved {args[1]}");
XNetModel.MLNetModelPath = Path.GetFullPath(args[1]);
foreach (var classFolder in Directory.GetDirectories(args[0]).Order(StringComparer.Ordinal))
{
    var first = Directory.EnumerateFiles(classFolder).Order(StringComparer.Ordinal).FirstOrDefault();
    if (first is not null)
    {
        var best = XNetModel.PredictAllLabels(new XNetModel.ModelInput { ImageSource = File.ReadAllBytes(first) }).First();
        Console.WriteLine($"{Path.GetFileName(classFolder)}/{Path.GetFileName(first)}: {best.Key} ({best.Value:P1})");
    }
}

return 0;
