using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using XNet.Tests.Shared;

namespace XNet.MLNet.Tests;

/// <summary>The trainer's three input forms: pixel vectors, images from LoadImages, encoded bytes from LoadRawImageBytes.</summary>
[TestClass]
public sealed class ImageInputTests
{
    private static string folder = null!;
    private static ImagePath[] rows = null!;

    [ClassInitialize]
    public static void WriteImages(TestContext context)
    {
        // 24 images of 20x20 (larger than the 16x16 input, so every form resizes): class "left" is bright on the left.
        folder = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"xnet-image-input-{Guid.NewGuid():N}")).FullName;
        rows = Enumerable.Range(0, 24).Select(i =>
        {
            var pixels = GeneratedDatasets.Pattern(20, 20, seed: i);
            for (int y = 0; y < 20; y++)
            {
                for (int x = i % 2 == 0 ? 0 : 10; x < (i % 2 == 0 ? 10 : 20); x++)
                {
                    pixels[y, x, 0] = pixels[y, x, 1] = pixels[y, x, 2] = 255;
                }
            }

            string file = $"{i}.bmp";
            GeneratedDatasets.WriteBmp(Path.Combine(folder, file), pixels);
            return new ImagePath { File = file, Label = i % 2 == 0 ? "left" : "right" };
        }).ToArray();
    }

    [ClassCleanup]
    public static void DeleteImages() => Directory.Delete(folder, recursive: true);

    [TestMethod]
    public void PixelsImagesAndEncodedBytesTrainAndScoreAlike()
    {
        var results = new[] { "pixels", "images", "bytes" }.Select(form =>
        {
            var ml = new MLContext(seed: 0);
            var data = ml.Data.LoadFromEnumerable(rows);
            IEstimator<ITransformer> input = form switch
            {
                "pixels" => ml.Transforms.LoadImages("Image", folder, nameof(ImagePath.File))
                    .Append(ml.Transforms.ResizeImages("Image", 16, 16, resizing: ImageResizingEstimator.ResizingKind.Fill))
                    .Append(ml.Transforms.ExtractPixels("Features", "Image", interleavePixelColors: false)),
                "images" => ml.Transforms.LoadImages("Features", folder, nameof(ImagePath.File)),
                _ => ml.Transforms.LoadRawImageBytes("Features", folder, nameof(ImagePath.File)),
            };
            var options = TestData.SmallOptions(epochs: 8);
            (options.ImageChannels, options.ImageHeight, options.ImageWidth, options.BatchSize) = (3, 16, 16, 8);
            var model = input.Append(ml.Transforms.Conversion.MapValueToKey("Label"))
                .Append(ml.MulticlassClassification.Trainers.XNet(options)).Fit(data);
            var scored = model.Transform(data);
            Assert.IsNull(scored.Schema.GetColumnOrNull("XNetPixels"), $"{form}: the pixel column the trainer adds is dropped again");
            var metrics = ml.MulticlassClassification.Evaluate(scored);
            var engine = ml.Model.CreatePredictionEngine<ImagePath, Prediction>(model);
            var single = engine.Predict(rows[3]).Score;
            model.LastTransformer.Dispose();
            return (form, metrics.MicroAccuracy, metrics.LogLoss, single);
        }).ToArray();

        foreach (var (form, accuracy, logLoss, single) in results.Skip(1))
        {
            Assert.AreEqual(results[0].MicroAccuracy, accuracy, $"{form}: accuracy");
            Assert.AreEqual(results[0].LogLoss, logLoss, $"{form}: log-loss");
            CollectionAssert.AreEqual(results[0].single, single, $"{form}: PredictionEngine scores");
        }

        Assert.IsGreaterThan(0.5, results[0].MicroAccuracy, "the classes are learnable");
    }

    [TestMethod]
    public void ModelsOfImagesAndOfEncodedBytesSaveAsMlNetZipsThatScoreAlike()
    {
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = TestData.SmallOptions();
        (options.ImageChannels, options.ImageHeight, options.ImageWidth) = (3, 16, 16);
        var forms = new (string Name, IEstimator<ITransformer> Input)[]
        {
            ("images", ml.Transforms.LoadImages("Features", folder, nameof(ImagePath.File))),
            ("bytes", ml.Transforms.LoadRawImageBytes("Features", folder, nameof(ImagePath.File))),
        };
        foreach (var (name, input) in forms)
        {
            string path = Path.Combine(folder, $"{name}.zip");
            var model = input.Append(ml.Transforms.Conversion.MapValueToKey("Label")).Append(ml.MulticlassClassification.Trainers.XNet(options)).Fit(data);
            using (model.LastTransformer)
            {
                ml.Model.Save(model, data.Schema, path);

                // A fresh context, as a scoring application has: encoded bytes need this library's decoding step registered.
                var scoring = new MLContext();
                if (name == "bytes")
                {
                    scoring.ComponentCatalog.RegisterAssembly(typeof(XNetTrainer).Assembly);
                }

                var loaded = scoring.Model.Load(path, out _);
                var expected = model.Transform(data).GetColumn<float[]>("Score").ToArray();
                var actual = loaded.Transform(data).GetColumn<float[]>("Score").ToArray();
                for (int i = 0; i < expected.Length; i++)
                {
                    for (int c = 0; c < expected[i].Length; c++)
                    {
                        Assert.AreEqual(expected[i][c], actual[i][c], 1e-5, $"{name}: row {i}, class {c}");
                    }
                }

                (loaded as IDisposable)?.Dispose();
            }
        }
    }

    [TestMethod]
    [DataRow("empty.png", "it is empty (0 bytes)")]
    [DataRow("readme.txt", "its 20 bytes are not an image (PNG, JPEG, BMP, ...)")]
    [DataRow("truncated.png", "it is truncated (IncompleteInput)")]
    public void EncodedBytesThatAreNoWholeImageAreNamedWithTheirColumn(string file, string reason)
    {
        string bad = Path.Combine(folder, file);
        using (var bitmap = new SkiaSharp.SKBitmap(20, 20))
        using (var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100))
        {
            byte[] whole = png.ToArray();
            File.WriteAllBytes(bad, file switch
            {
                "empty.png" => [],
                "readme.txt" => "one folder per class"u8.ToArray(),
                _ => whole[..(whole.Length * 2 / 3)],
            });
        }

        try
        {
            var ml = new MLContext(seed: 0);
            var data = ml.Data.LoadFromEnumerable(rows.Append(new ImagePath { File = file, Label = "left" }));
            var options = TestData.SmallOptions(epochs: 1);
            (options.ImageChannels, options.ImageHeight, options.ImageWidth, options.FeatureColumnName) = (3, 16, 16, "Image");
            var pipeline = ml.Transforms.LoadRawImageBytes("Image", folder, nameof(ImagePath.File))
                .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
                .Append(ml.MulticlassClassification.Trainers.XNet(options));
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => pipeline.Fit(data));
            StringAssert.Contains(ex.Message, "Features column 'Image' of the training data: An image's bytes cannot be decoded: " + reason);

            // Scoring the same bytes says why too.
            var model = pipeline.Fit(ml.Data.LoadFromEnumerable(rows));
            using var engine = ml.Model.CreatePredictionEngine<ImagePath, Prediction>(model);
            var scoring = Assert.ThrowsExactly<InvalidDataException>(() => engine.Predict(new ImagePath { File = file, Label = "left" }));
            StringAssert.Contains(scoring.Message, "An image's bytes cannot be decoded: " + reason);
            model.LastTransformer.Dispose();
        }
        finally
        {
            File.Delete(bad);
        }
    }

    public sealed class ImagePath
    {
        public string File { get; set; } = "";

        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
    }
}
