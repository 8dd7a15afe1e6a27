using XNet.ModelConsumer;

// Usage: dotnet run --project samples/XNet.ModelConsumer -- <model.zip> [image files or folders...]
// Default images: samples/data/images/*.png. The zip comes from samples/scripts/train-image-folder.cs.
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: XNet.ModelConsumer <model.zip> [image files or folders...]");
    return 2;
}

XNetModel.MLNetModelPath = Path.GetFullPath(args[0]);
var inputs = args.Length > 1 ? args[1..] : [Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "data", "images")];
var images = inputs.SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p, "*.png").Order().ToArray() : new[] { p }).ToArray();
foreach (string image in images)
{
    var output = XNetModel.Predict(new XNetModel.ModelInput { ImagePath = Path.GetFullPath(image) });
    Console.WriteLine($"{Path.GetFileName(image)}: {output.PredictedLabel} ({output.Score.Max():P1})");
}

return 0;
