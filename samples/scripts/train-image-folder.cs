#:project ../../src/XNet.MLNet/XNet.MLNet.csproj
#:property XNetUsesNativeTorch=true
#:property PublishAot=false
// XNetUsesNativeTorch=true lets the repository's build/ targets add libtorch-cpu-linux-x64 2.10.0 and mark the
// GLIBCXX_3.4.32 need of libLibTorchSharp.so weak. "#:package libtorch-cpu-linux-x64@2.10.0" (with
// "#:property ManagePackageVersionsCentrally=false", which this repository's central versions need) builds, but on a
// system libstdc++ older than GLIBCXX_3.4.32 (Debian 12) it fails when TorchSharp loads; see docs/pipelines.md.
// PublishAot=false: file-based apps default to AOT settings that turn off dynamic code even under dotnet run; ML.NET needs it.
// Trains an X-Net on an image folder (root/<class>/*.png|jpg|bmp) and saves an ML.NET zip that takes image paths.
// Usage: dotnet run samples/scripts/train-image-folder.cs -- <image-folder> <out.zip>   (see docs/pipelines.md)
using Microsoft.ML;
using XNet.MLNet;
using XNet.MLNet.Data;

var ml = new MLContext(seed: 1);
var images = ImageFolderDataset.Load(ml, args[0], height: 28, width: 28, channels: 1);
var xnet = ml.MulticlassClassification.Trainers.XNet(new XNetTrainer.Options
{
    Architecture = "x-resnet-8-2", Epoch = 3, BatchSize = 32, LearningRate = 0.05f, Device = "cpu",
}).Fit(images.Data);

// The saved model takes a decoded image (MLImage) in column Image, as samples/XNet.ModelConsumer feeds it from uploaded
// bytes: ML.NET's own resize and pixel transforms, the X-Net, then class names as PredictedLabel.
var empty = ml.Data.LoadFromEnumerable(Array.Empty<ModelInput>());
var pixels = ImageFileInput.CreateImagePipeline(ml, images.Shape, imageColumnName: "Image").Fit(empty);
var names = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(xnet.Transform(images.Data));
XNetModelFile.SaveMLNet(ml, new Microsoft.ML.Data.TransformerChain<ITransformer>(pixels, xnet, names), empty.Schema, args[1]);
Console.WriteLine($"{images.Data.GetRowCount()} images, {images.ClassNames.Count} classes; saved {args[1]}");

// Label as in samples/XNet.ModelConsumer's input (any value): ML.NET saves the text columns of the input schema, and
// cannot save an image column alone.
internal sealed class ModelInput
{
    public string Label { get; set; } = "";

    [Microsoft.ML.Transforms.Image.ImageType(28, 28)]
    public Microsoft.ML.Data.MLImage? Image { get; set; }
}
