using XNet.MLNet;
using XNet.MLNet.Data;

namespace XNet.Cli.Commands;

/// <summary>
/// What <c>xnet train</c> trains on an image folder when <c>--image-size</c> and <c>--model</c> are not given: the input
/// size follows the photos (their median shorter side, rounded down to a multiple of 32, from 64 to 224 pixels) and the
/// model is a MobileNet X-Net, whose strided stem suits photo sizes; images under 64 pixels are read at 32x32 for the
/// CIFAR ResNet X-Net, the trainer's default.
/// </summary>
internal static class PhotoDefaults
{
    /// <summary>The model for photos of 64 pixels and more.</summary>
    public const string PhotoModel = "x-mobilenet-0.5-4";

    /// <summary>The input side for the photos of <paramref name="folder"/>, and their median size.</summary>
    public static (int Side, int MedianHeight, int MedianWidth) InputSide(string folder)
    {
        var (height, width) = ImageDatasets.MedianImageSize(folder);
        int shorter = Math.Min(height, width);
        return (shorter < 64 ? 32 : Math.Min(224, shorter / 32 * 32), height, width);
    }

    /// <summary>The model for images read at <paramref name="side"/> pixels.</summary>
    public static string Model(int side) => side < 64 ? XNetTrainer.Defaults.Architecture : PhotoModel;
}
