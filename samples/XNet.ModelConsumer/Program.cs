using System.Globalization;
using XNet.ModelConsumer;

// Usage: dotnet run --project samples/XNet.ModelConsumer -- <model.zip> [image files or folders...]
// Default images: samples/data/images/*.png. The zip comes from samples/XNet.ModelTrainer or
// samples/scripts/train-image-folder.cs. Each image is classified from its path and from its bytes (as a web upload
// arrives), and the three most probable classes are listed.
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: XNet.ModelConsumer <model.zip> [image files or folders...]");
    return 2;
}

XNetModel.MLNetModelPath = Path.GetFullPath(args[0]);
if (!File.Exists(XNetModel.MLNetModelPath))
{
    Console.Error.WriteLine($"error: model file '{args[0]}' does not exist.");
    return 1;
}

var inputs = args.Length > 1 ? args[1..] : [Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "data", "images")];
var images = inputs.SelectMany(p => Directory.Exists(p)
    ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories).Where(IsImage).Order(StringComparer.Ordinal).ToArray()
    : new[] { p }).ToArray();
string current = args[0];
try
{
    _ = XNetModel.PredictEngine.Value;
    foreach (string image in images)
    {
        current = image;
        var fromPath = XNetModel.Predict(image);
        var upload = new XNetModel.ModelInput { ImageSource = File.ReadAllBytes(image) };
        var fromBytes = XNetModel.Predict(upload);
        var top = XNetModel.PredictAllLabels(upload).Take(3)
            .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value:P1}"));
        Console.WriteLine($"{Path.GetFullPath(image)}\t{fromPath.PredictedLabel}\t{fromBytes.PredictedLabel}\t{string.Join(", ", top)}");
    }
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or FormatException
                               or InvalidDataException)
{
    // A sample's console: one line that says what went wrong, not a stack trace.
    string reason = ex.Message.Contains("Could not find input column", StringComparison.Ordinal)
        ? $"model '{args[0]}' does not read an 'Image' column of decoded images ({ex.Message}). This consumer takes zips written by " +
          "samples/XNet.ModelTrainer or samples/scripts/train-image-folder.cs; a zip from 'xnet export --mlnet' takes pixel vectors " +
          "(score it with 'xnet predict --model ZIP')."
        : $"'{current}': {ex.GetBaseException().Message}";
    Console.Error.WriteLine($"error: {reason}");
    return 1;
}

return 0;

static bool IsImage(string path) => Path.GetExtension(path).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" or ".bmp";
