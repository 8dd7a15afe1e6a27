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

    /// <summary>The <c>--cache-dir</c> option's help, shared by the commands that read image folders.</summary>
    public const string CacheDirectoryHelp =
        "Image folders only: where the decoded images are cached, one file per folder and size, reused by later runs. Default: xnet-image-cache in the temporary folder.";

    /// <summary>What is wrong with a <c>--cache-dir</c> value, or null: a folder that exists or can be created.</summary>
    public static string? CacheDirectoryError(string? directory) =>
        directory is null ? null
        : directory.Trim().Length == 0 ? "--cache-dir is empty; expected a folder for the decoded-image cache"
        : File.Exists(directory) ? $"--cache-dir '{directory}' is a file; expected a folder for the decoded-image cache (created if missing)"
        : null;

    /// <summary>
    /// Loads one split ("train" or "test"); image folders are read at <paramref name="imageShape"/>, showing their decoding,
    /// and cached in <paramref name="cacheDirectory"/> (null: <see cref="ImageFolderOptions.CacheDirectory"/>'s default).
    /// </summary>
    public static ImageDataset Load(MLContext mlContext, string? path, string split, ImageShape imageShape, bool skipUnreadable,
        string? cacheDirectory = null)
    {
        var options = new ImageFolderOptions
        {
            Height = imageShape.Height,
            Width = imageShape.Width,
            Channels = imageShape.Channels,
            SkipUnreadable = skipUnreadable,
            CacheDirectory = cacheDirectory,
        };
        return IsImageFolder(path)
            ? ImageCacheDisplay.Run($"{split} images", progress => ImageDatasets.Load(mlContext, path!, split, options with { Progress = progress }))
            : ImageDatasets.Load(mlContext, path ?? Embedded, split, options);
    }

    /// <summary>Whether <paramref name="path"/> is a folder of class subfolders of images (not CIFAR or idx files).</summary>
    public static bool IsImageFolder(string? path) =>
        path is not null && ImageDatasets.Detect(path, out _) == ImageDatasetFormat.ImageFolder;
}
