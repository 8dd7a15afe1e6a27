using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet.Data;
using XNet.MLNet.Training;

namespace XNet.Cli.Commands;

/// <summary>
/// Where <c>xnet train</c> and <c>xnet evaluate</c> read images from: a CIFAR-10/100 binary folder, an idx folder
/// (MNIST, Fashion-MNIST), an image folder, or the embedded Fashion-MNIST subset when no path is given.
/// </summary>
internal static class DatasetSource
{
    /// <summary>The embedded Fashion-MNIST subset copied next to <c>xnet</c>.</summary>
    public static string Embedded => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    /// <summary>Loads one split ("train" or "test"); image folders are read at <paramref name="imageShape"/>.</summary>
    public static ImageDataset Load(MLContext mlContext, string? path, string split, ImageShape imageShape, bool skipUnreadable) =>
        ImageDatasets.Load(mlContext, path ?? Embedded, split, new ImageFolderOptions
        {
            Height = imageShape.Height,
            Width = imageShape.Width,
            Channels = imageShape.Channels,
            SkipUnreadable = skipUnreadable,
        });

    /// <summary>
    /// The augmentation the paper's reference code used for this kind of data (CIFAR: pad-4 crop and flip; image folders:
    /// RandomResizedCrop and flip). Idx digits and clothes get a pad-2 crop and flip, this project's own default.
    /// </summary>
    public static (AugmentationKind Kind, int Padding) ReferenceAugmentation(ImageDataset data) => data.Augmentation switch
    {
        MLNet.Data.ReferenceAugmentation.PadCropFlip => (AugmentationKind.PadCropFlip, 4),
        MLNet.Data.ReferenceAugmentation.RandomResizedCropFlip => (AugmentationKind.RandomResizedCrop, 0),
        _ => (AugmentationKind.PadCropFlip, 2),
    };
}
