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
    /// torchvision's <c>RandomErasing.get_params</c> (scale 0.02-0.33, ratio 0.3-3.3), drawn with probability
    /// <paramref name="probability"/>: up to 10 draws of an area fraction and a log-uniform aspect ratio; the first box
    /// smaller than the image is placed uniformly. A height of 0 means nothing is erased.
    /// </summary>
    public static (long Top, long Left, long Height, long Width) DrawErasing(Random random, double probability, int height, int width)
    {
        if (random.NextDouble() >= probability)
        {
            return (0, 0, 0, 0);
        }

        double area = (double)height * width, logMin = Math.Log(0.3), logMax = Math.Log(1 / 0.3);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * (0.02 + random.NextDouble() * (0.33 - 0.02));
            double aspect = Math.Exp(logMin + random.NextDouble() * (logMax - logMin));
            int h = (int)Math.Round(Math.Sqrt(targetArea * aspect));
            int w = (int)Math.Round(Math.Sqrt(targetArea / aspect));
            if (h > 0 && w > 0 && h < height && w < width)
            {
                return (random.Next(height - h + 1), random.Next(width - w + 1), h, w);
            }
        }

        return (0, 0, 0, 0);
    }

    /// <summary>
    /// Sets box i of every image to <paramref name="value"/> (one value per channel), where its height is not 0.
    /// </summary>
    /// <param name="images">(B, C, H, W) raw pixels.</param>
    /// <param name="tops">Top row of each box.</param>
    /// <param name="lefts">Left column of each box.</param>
    /// <param name="heights">Height of each box; 0 leaves the image as it is.</param>
    /// <param name="widths">Width of each box.</param>
    /// <param name="value">(C) the value erased pixels get.</param>
    public static Tensor Erase(Tensor images, long[] tops, long[] lefts, long[] heights, long[] widths, Tensor value)
    {
        int batch = (int)images.shape[0], height = (int)images.shape[2], width = (int)images.shape[3];
        var rows = new bool[batch * height];
        var columns = new bool[batch * width];
        for (int b = 0; b < batch; b++)
        {
            for (long i = tops[b]; i < tops[b] + heights[b]; i++)
            {
                rows[b * height + i] = true;
            }

            for (long j = lefts[b]; j < lefts[b] + (heights[b] > 0 ? widths[b] : 0); j++)
            {
                columns[b * width + j] = true;
            }
        }

        using var scope = NewDisposeScope();
        var inside = tensor(rows, device: images.device).view(batch, 1, height, 1)
            .logical_and(tensor(columns, device: images.device).view(batch, 1, 1, width));
        return where(inside, value.to(images.dtype, images.device).view(1, -1, 1, 1), images).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Crops box i of every image and resizes it to the input size, as <c>interpolate(crop, (H, W), bilinear,
    /// align_corners: false)</c> would, optionally mirrored; one <c>grid_sample</c> for the batch.
    /// </summary>
    /// <remarks>
    /// The sampling coordinates are computed here from the boxes rather than with tensor-and-number operations: TorchSharp
    /// turns each number into a native scalar that only the finalizer frees, and a collection during the native call can
    /// free it while libtorch still reads it (a 200,000-image run once stopped in libtorch's "toFloat" check that way).
    /// </remarks>
    /// <param name="images">(B, C, H, W) raw pixels.</param>
    /// <param name="tops">Top row of each image's box.</param>
    /// <param name="lefts">Left column of each box.</param>
    /// <param name="heights">Height of each box.</param>
    /// <param name="widths">Width of each box.</param>
    /// <param name="flips">Whether to mirror each image.</param>
    public static Tensor ResizedCropAndFlip(Tensor images, long[] tops, long[] lefts, long[] heights, long[] widths, bool[] flips)
    {
        int batch = (int)images.shape[0], height = (int)images.shape[2], width = (int)images.shape[3];
        var gy = new float[batch * height];
        var gx = new float[batch * width];
        for (int b = 0; b < batch; b++)
        {
            // Source pixel of output pixel j: left + (j + 0.5) * w / W - 0.5, clamped into the box (interpolate's rule);
            // grid_sample (align_corners: false) reads pixel p at the normalised coordinate (2p + 1) / size - 1.
            for (int i = 0; i < height; i++)
            {
                double y = Math.Clamp(tops[b] + (i + 0.5) * heights[b] / height - 0.5, tops[b], tops[b] + heights[b] - 1);
                gy[b * height + i] = (float)((2 * y + 1) / height - 1);
            }

            for (int j = 0; j < width; j++)
            {
                int column = flips[b] ? width - 1 - j : j;
                double x = Math.Clamp(lefts[b] + (column + 0.5) * widths[b] / width - 0.5, lefts[b], lefts[b] + widths[b] - 1);
                gx[b * width + j] = (float)((2 * x + 1) / width - 1);
            }
        }

        using var scope = NewDisposeScope();
        var rows = tensor(gy, device: images.device).view(batch, height, 1).expand(-1, height, width);
        var columns = tensor(gx, device: images.device).view(batch, 1, width).expand(-1, height, width);
        var grid = stack(new[] { columns, rows }, dim: 3).to_type(images.dtype);
        return nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false)
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Zero-pads by <paramref name="padding"/> and crops each image back to H x W at its offsets, optionally mirrored: one
    /// gather over the padded batch, whose indices are computed here.
    /// </summary>
    /// <param name="images">(B, C, H, W) raw pixels.</param>
    /// <param name="padding">p; offsets lie in [0, 2p].</param>
    /// <param name="rows">Vertical offset of each image into its padded image.</param>
    /// <param name="columns">Horizontal offset of each image into its padded image.</param>
    /// <param name="flips">Whether to mirror each image.</param>
    public static Tensor CropAndFlip(Tensor images, int padding, long[] rows, long[] columns, bool[] flips)
    {
        int batch = (int)images.shape[0], channels = (int)images.shape[1], height = (int)images.shape[2], width = (int)images.shape[3];
        long paddedWidth = width + 2 * padding;
        var rowStarts = new long[batch * height];
        var sourceColumns = new long[batch * width];
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < height; i++)
            {
                rowStarts[b * height + i] = (rows[b] + i) * paddedWidth;
            }

            for (int j = 0; j < width; j++)
            {
                sourceColumns[b * width + j] = columns[b] + (flips[b] ? width - 1 - j : j);
            }
        }

        using var scope = NewDisposeScope();
        var padded = padding > 0 ? nn.functional.pad(images, new long[] { padding, padding, padding, padding }) : images;

        // Index of output pixel (i, j) in the flattened padded image: its row's start plus its column. The addition is
        // given its alpha explicitly, kept alive until the call returns (TorchSharp's `+` would leave a temporary native
        // scalar to the finalizer, see ResizedCropAndFlip).
        using Scalar one = 1;
        var linear = tensor(rowStarts, device: images.device).view(batch, height, 1)
            .add(tensor(sourceColumns, device: images.device).view(batch, 1, width), one)
            .view(batch, 1, height * width);
        return padded.flatten(2).gather(2, linear.expand(batch, channels, height * width)).view(batch, channels, height, width)
            .MoveToOuterDisposeScope();
    }
}
