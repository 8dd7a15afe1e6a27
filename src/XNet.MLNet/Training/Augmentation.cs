using TorchSharp;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>
/// Tensor-level augmentation of a whole batch in one gather: zero-pad by p, crop back to H x W at per-image offsets,
/// optionally mirrored. Runs on the batch's device; the offsets and flips come from the seeded batch loader.
/// </summary>
internal static class Augmentation
{
    /// <param name="images">(B, C, H, W) raw pixels.</param>
    /// <param name="padding">p; offsets lie in [0, 2p].</param>
    /// <param name="rows">(B) vertical offsets into the padded image.</param>
    /// <param name="columns">(B) horizontal offsets into the padded image.</param>
    /// <param name="flips">(B) whether to mirror each image.</param>
    public static Tensor CropAndFlip(Tensor images, int padding, Tensor rows, Tensor columns, Tensor flips)
    {
        long batch = images.shape[0], channels = images.shape[1], height = images.shape[2], width = images.shape[3];
        var padded = padding > 0 ? nn.functional.pad(images, new long[] { padding, padding, padding, padding }) : images;
        long paddedWidth = width + 2 * padding;

        var y = arange(height, device: images.device).unsqueeze(0) + rows.unsqueeze(1);           // (B, H)
        var x = arange(width, device: images.device).unsqueeze(0);                                // (1, W)
        x = where(flips.unsqueeze(1), (width - 1) - x, x) + columns.unsqueeze(1);                 // (B, W)
        var linear = (y.unsqueeze(2) * paddedWidth + x.unsqueeze(1)).view(batch, 1, height * width);
        return padded.flatten(2).gather(2, linear.expand(batch, channels, height * width)).view(batch, channels, height, width);
    }
}
