using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using XNet.Architectures;

namespace XNet.MLNet.Data;

/// <summary>
/// ML.NET's own image transforms that turn image files into the pixel vectors an X-Net takes: LoadImages, then
/// ResizeImages to the model's input size, then ExtractPixels, planar (C, H, W), raw 0-255 values, grayscale for
/// one-channel models.
/// </summary>
public static class ImageFileInput
{
    /// <summary>The estimator chain from a column of image paths to a <paramref name="outputColumnName"/> pixel vector.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="shape">The model's input shape (1 channel: grayscale; 3: RGB).</param>
    /// <param name="imageFolder">Folder the paths are relative to (null: as given).</param>
    /// <param name="imagePathColumnName">Input column of image paths.</param>
    /// <param name="outputColumnName">Output column of pixels.</param>
    /// <exception cref="ArgumentException">When the shape has a channel count other than 1 or 3.</exception>
    public static IEstimator<ITransformer> CreatePipeline(MLContext mlContext, ImageShape shape, string? imageFolder = null,
        string imagePathColumnName = "ImagePath", string outputColumnName = "Features")
    {
        const string image = "XNetImage";
        return mlContext.Transforms.LoadImages(image, imageFolder, imagePathColumnName)
            .Append(CreateImagePipeline(mlContext, shape, image, outputColumnName))
            .Append(mlContext.Transforms.DropColumns(image));
    }

    /// <summary>
    /// The estimator chain from a column of images (<c>MLImage</c>, from <c>LoadImages</c> or <c>MLImage.CreateFromStream</c>)
    /// to a <paramref name="outputColumnName"/> pixel vector: ResizeImages, grayscale for one channel, ExtractPixels. The
    /// image column itself is left as it is, so a saved model can take images decoded by the caller (from uploaded
    /// bytes, say), which ML.NET's own transforms cannot decode.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="shape">The model's input shape (1 channel: grayscale; 3: RGB).</param>
    /// <param name="imageColumnName">Input column of images.</param>
    /// <param name="outputColumnName">Output column of pixels.</param>
    /// <param name="resizing">How the image reaches the shape: <c>Fill</c> (the whole image, stretched; what image folders
    /// and the trainer's image columns use), or <c>IsoCrop</c> (aspect ratio kept, the centre cut out).</param>
    /// <exception cref="ArgumentException">When the shape has a channel count other than 1 or 3.</exception>
    public static IEstimator<ITransformer> CreateImagePipeline(MLContext mlContext, ImageShape shape, string imageColumnName = "Image",
        string outputColumnName = "Features", ImageResizingEstimator.ResizingKind resizing = ImageResizingEstimator.ResizingKind.Fill)
    {
        var colors = shape.Channels switch
        {
            1 => ImagePixelExtractingEstimator.ColorBits.Red, // with grayscale conversion below, R = G = B = luminance
            3 => ImagePixelExtractingEstimator.ColorBits.Rgb,
            _ => throw new ArgumentException($"Image files give 1 (grayscale) or 3 (RGB) channels; the model takes {shape.Channels}."),
        };
        const string resized = "XNetResizedImage";
        IEstimator<ITransformer> chain = mlContext.Transforms.ResizeImages(resized, shape.Width, shape.Height, imageColumnName, resizing);
        if (shape.Channels == 1)
        {
            chain = chain.Append(mlContext.Transforms.ConvertToGrayscale(resized, resized));
        }

        return chain
            .Append(mlContext.Transforms.ExtractPixels(outputColumnName, resized, colors, interleavePixelColors: false))
            .Append(mlContext.Transforms.DropColumns(resized));
    }

    /// <summary>Class probabilities of one image file under a trained X-Net (slot i is <c>model.Model.ClassNames[i]</c>).</summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When the file cannot be decoded as an image; the message names it.</exception>
    public static float[] Score(MLContext mlContext, XNetTransformer model, string imagePath) =>
        Score(mlContext, model, model.Model.InputShape, imagePath, model.FeatureColumnName, model.ScoreColumnName);

    /// <summary>
    /// Class probabilities of one image file under any model that takes the pixel vector, such as an ML.NET zip with an
    /// X-Net loaded by <c>mlContext.Model.Load</c>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model: pixels in <paramref name="featureColumnName"/>, probabilities out in <paramref name="scoreColumnName"/>.</param>
    /// <param name="inputShape">The model's input shape.</param>
    /// <param name="imagePath">The image file.</param>
    /// <param name="featureColumnName">The model's input column.</param>
    /// <param name="scoreColumnName">The model's output column of probabilities.</param>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When the file cannot be decoded as an image; the message names it.</exception>
    public static float[] Score(MLContext mlContext, ITransformer model, ImageShape inputShape, string imagePath,
        string featureColumnName = "Features", string scoreColumnName = "Score")
    {
        if (!File.Exists(imagePath))
        {
            throw IO.MissingPath.File("Image file", imagePath);
        }

        if (new FileInfo(imagePath).Length == 0)
        {
            throw new InvalidDataException($"Image file '{imagePath}' is empty or not a regular file.");
        }

        try
        {
            CheckComplete(imagePath);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"Image file '{imagePath}' could not be read as an image: {ex.Message}.", ex);
        }

        var data = mlContext.Data.LoadFromEnumerable(new[] { new ImagePathRow { ImagePath = imagePath } });
        var pixels = CreatePipeline(mlContext, inputShape, outputColumnName: featureColumnName).Fit(data);
        try
        {
            return model.Transform(pixels.Transform(data)).GetColumn<float[]>(scoreColumnName).Single();
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            throw new InvalidDataException($"Image file '{imagePath}' could not be read as an image: {ex.GetBaseException().Message}", ex);
        }
    }

    /// <summary>
    /// Decodes <paramref name="path"/> once to check it is a whole image: ML.NET's decoder fills the missing rows of a
    /// truncated file in silently, and a huge one would be allocated in full.
    /// </summary>
    /// <exception cref="InvalidDataException">When the file is not an image, is larger than 20,000 x 20,000 pixels, or is incomplete.</exception>
    internal static void CheckComplete(string path)
    {
        using var codec = SkiaSharp.SKCodec.Create(path) ?? throw new InvalidDataException("it is not an image file (PNG, JPEG, BMP, ...)");
        CheckComplete(codec);
    }

    /// <summary>
    /// <see cref="CheckComplete(string)"/> for an encoded image in memory (a <c>LoadRawImageBytes</c> column's value).
    /// </summary>
    /// <exception cref="InvalidDataException">When the bytes are empty or not an image, or the image is too large or incomplete.</exception>
    internal static void CheckComplete(byte[] encoded)
    {
        if (encoded.Length == 0)
        {
            throw new InvalidDataException("it is empty (0 bytes)");
        }

        using var data = SkiaSharp.SKData.CreateCopy(encoded);
        using var codec = SkiaSharp.SKCodec.Create(data)
            ?? throw new InvalidDataException($"its {encoded.Length:N0} bytes are not an image (PNG, JPEG, BMP, ...)");
        CheckComplete(codec);
    }

    private static void CheckComplete(SkiaSharp.SKCodec codec)
    {
        var info = codec.Info;
        if ((long)info.Width * info.Height > 20_000L * 20_000)
        {
            throw new InvalidDataException($"it is {info.Width:N0} x {info.Height:N0} pixels, beyond the 20,000 x 20,000 X-Net decodes");
        }

        using var bitmap = new SkiaSharp.SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SkiaSharp.SKCodecResult.Success)
        {
            throw new InvalidDataException($"it is {(result == SkiaSharp.SKCodecResult.IncompleteInput ? "truncated" : "damaged")} ({result})");
        }
    }

    private sealed class ImagePathRow
    {
        public string ImagePath { get; set; } = "";
    }
}
