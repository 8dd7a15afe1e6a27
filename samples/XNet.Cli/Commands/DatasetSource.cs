using Microsoft.ML;
using XNet.Architectures;
using XNet.Cli.Display;
using XNet.MLNet.Data;

namespace XNet.Cli.Commands;

/// <summary>
/// Where <c>xnet train</c> and <c>xnet evaluate</c> read images from: a CIFAR-10/100 binary folder, an idx folder
/// (MNIST, Fashion-MNIST), an image folder, or the embedded Fashion-MNIST subset when no path is given.
/// </summary>
internal static class DatasetSource
{
    /// <summary>The embedded Fashion-MNIST subset copied next to <c>xnet</c>.</summary>
    public static string Embedded => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    /// <summary>Loads one split ("train" or "test"); image folders are read at <paramref name="imageShape"/>, showing their decoding.</summary>
    public static ImageDataset Load(MLContext mlContext, string? path, string split, ImageShape imageShape, bool skipUnreadable)
    {
        var options = new ImageFolderOptions
        {
            Height = imageShape.Height,
            Width = imageShape.Width,
            Channels = imageShape.Channels,
            SkipUnreadable = skipUnreadable,
        };
        return IsImageFolder(path)
            ? ImageCacheDisplay.Run($"{split} images", progress => ImageDatasets.Load(mlContext, path!, split, options with { Progress = progress }))
            : ImageDatasets.Load(mlContext, path ?? Embedded, split, options);
    }

    /// <summary>Whether <paramref name="path"/> is a folder of class subfolders of images (not CIFAR or idx files).</summary>
    public static bool IsImageFolder(string? path) =>
        path is not null && ImageDatasets.Detect(path, out _) == ImageDatasetFormat.ImageFolder;
}
