using TorchSharp;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>The augmentation of training images, drawn per image from the seeded batch loader.</summary>
public enum AugmentationKind
{
    /// <summary>
    /// Zero-pad by <see cref="XNetTrainer.Options.RandomCropPadding"/>, crop back to the input size at a random offset, and flip
    /// horizontally when <see cref="XNetTrainer.Options.HorizontalFlip"/> is set (the paper's reference code's CIFAR augmentation with padding 4).
    /// </summary>
    PadCropFlip,

    /// <summary>
    /// torchvision's RandomResizedCrop to the input size (area fraction <see cref="XNetTrainer.Options.CropScale"/>, aspect ratio
    /// <see cref="XNetTrainer.Options.CropRatio"/>, bilinear resize), then a horizontal flip when <see cref="XNetTrainer.Options.HorizontalFlip"/>
    /// is set (the paper's reference code's ImageNet augmentation).
    /// </summary>
    RandomResizedCrop,

    /// <summary>No augmentation: the images as they are.</summary>
    None,
}

/// <summary>
/// Tensor-level augmentation of a whole batch: zero-pad by p and crop back to H x W at per-image offsets (one gather), or
/// crop a per-image box and resize it to H x W bilinearly (one grid_sample); both optionally mirrored. Runs on the batch's
/// device; the offsets, boxes and flips come from the seeded batch loader.
/// </summary>
internal static class Augmentation
{
    /// <summary>
    /// torchvision's <c>RandomResizedCrop.get_params</c>: up to 10 draws of an area fraction in <paramref name="scale"/> and a
    /// log-uniform aspect ratio in <paramref name="ratio"/>; the first box that fits is placed uniformly, otherwise the
    /// centre crop with the ratio clamped into range.
    /// </summary>
    /// <returns>Top row, left column, height and width of the box.</returns>
    public static (int Top, int Left, int Height, int Width) DrawResizedCrop(Random random, int height, int width,
        (double Min, double Max) scale, (double Min, double Max) ratio)
    {
        double area = (double)height * width;
        double logMin = Math.Log(ratio.Min), logMax = Math.Log(ratio.Max);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * (scale.Min + random.NextDouble() * (scale.Max - scale.Min));
            double aspect = Math.Exp(logMin + random.NextDouble() * (logMax - logMin));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspect));
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = random.Next(height - h + 1);
                int left = random.Next(width - w + 1);
                return (top, left, h, w);
            }
        }

        double inRatio = (double)width / height;
        int cropWidth = width, cropHeight = height;
        if (inRatio < ratio.Min)
        {
            cropHeight = (int)Math.Round(width / ratio.Min);
        }
        else if (inRatio > ratio.Max)
        {
            cropWidth = (int)Math.Round(height * ratio.Max);
        }

        return ((height - cropHeight) / 2, (width - cropWidth) / 2, cropHeight, cropWidth);
    }

    /// <summary>
    /// Crops box i of every image and resizes it to the input size, as <c>interpolate(crop, (H, W), bilinear,
    /// align_corners: false)</c> would, optionally mirrored; one <c>grid_sample</c> for the batch.
    /// </summary>
    /// <param name="images">(B, C, H, W) raw pixels.</param>
    /// <param name="tops">(B) top rows of the boxes.</param>
    /// <param name="lefts">(B) left columns of the boxes.</param>
    /// <param name="heights">(B) box heights.</param>
    /// <param name="widths">(B) box widths.</param>
    /// <param name="flips">(B) whether to mirror each image.</param>
    public static Tensor ResizedCropAndFlip(Tensor images, Tensor tops, Tensor lefts, Tensor heights, Tensor widths, Tensor flips)
    {
        long height = images.shape[2], width = images.shape[3];
        var options = images.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var rowsOut = arange(height, dtype: options, device: images.device).unsqueeze(0);               // (1, H)
        var columnsOut = arange(width, dtype: options, device: images.device).unsqueeze(0);             // (1, W)
        columnsOut = where(flips.unsqueeze(1), (width - 1) - columnsOut, columnsOut);                    // (B, W)

        // Source pixel of output pixel j: left + (j + 0.5) * w / W - 0.5, clamped into the box (interpolate's rule).
        var top = tops.to_type(options).unsqueeze(1);
        var left = lefts.to_type(options).unsqueeze(1);
        var h = heights.to_type(options).unsqueeze(1);
        var w = widths.to_type(options).unsqueeze(1);
        var y = minimum(maximum(top + (rowsOut + 0.5) * h / height - 0.5, top), top + h - 1);           // (B, H)
        var x = minimum(maximum(left + (columnsOut + 0.5) * w / width - 0.5, left), left + w - 1);      // (B, W)

        // grid_sample (align_corners: false) reads pixel p at the normalised coordinate (2p + 1) / size - 1.
        var gy = ((2 * y + 1) / height - 1).unsqueeze(2).expand(-1, height, width);
        var gx = ((2 * x + 1) / width - 1).unsqueeze(1).expand(-1, height, width);
        var grid = stack(new[] { gx, gy }, dim: 3).to_type(images.dtype);
        return nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
    }

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
