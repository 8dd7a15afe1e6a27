using XNet.Architectures;

namespace XNet.MLNet.Training;

/// <summary>
/// Images and labels held in memory for the training engine: raw pixel values, channels-first, one image after
/// another, and 0-based class indices. The engine knows nothing of IDataView; adapters fill this.
/// </summary>
public sealed class ImageSet
{
    private readonly float[] pixels;
    private readonly int[] labels;

    /// <summary>Creates the set; arrays are taken as they are, not copied.</summary>
    /// <exception cref="ArgumentException">When the sizes disagree or a label is outside [0, numClasses).</exception>
    public ImageSet(ImageShape shape, float[] pixels, int[] labels, int numClasses)
    {
        shape.Validate("ImageSet");
        if (pixels.Length != (long)labels.Length * shape.Size)
        {
            throw new ArgumentException(
                $"ImageSet: {pixels.Length} pixel values do not make {labels.Length} images of {shape}.");
        }

        int bad = Array.FindIndex(labels, l => l < 0 || l >= numClasses);
        if (bad >= 0)
        {
            throw new ArgumentException($"ImageSet: label {labels[bad]} of image {bad} is outside [0, {numClasses}).");
        }

        Shape = shape;
        NumClasses = numClasses;
        this.pixels = pixels;
        this.labels = labels;
    }

    /// <summary>Shape of every image.</summary>
    public ImageShape Shape { get; }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Number of images.</summary>
    public int Count => labels.Length;

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Image(int index) => pixels.AsSpan(index * Shape.Size, Shape.Size);

    /// <summary>The 0-based class of image <paramref name="index"/>.</summary>
    public int Label(int index) => labels[index];

    /// <summary>Per-channel mean and standard deviation over every pixel of the set.</summary>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        int channels = Shape.Channels, plane = Shape.Height * Shape.Width;
        var sum = new double[channels];
        var sumSquares = new double[channels];
        for (int i = 0; i < Count; i++)
        {
            var image = Image(i);
            for (int c = 0; c < channels; c++)
            {
                foreach (float v in image.Slice(c * plane, plane))
                {
                    sum[c] += v;
                    sumSquares[c] += (double)v * v;
                }
            }
        }

        double n = (double)Count * plane;
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double m = sum[c] / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Max(Math.Sqrt(Math.Max(0, sumSquares[c] / n - m * m)), 1e-6);
        }

        return (mean, std);
    }

    /// <summary>Splits off a random <paramref name="fraction"/> of the images (seeded) as a second set.</summary>
    /// <exception cref="ArgumentException">When the fraction is not in (0, 1) or leaves either side empty.</exception>
    public (ImageSet Kept, ImageSet Held) Split(double fraction, int seed)
    {
        int take = (int)Math.Round(Count * fraction);
        if (!(fraction > 0 && fraction < 1) || take == 0 || take == Count)
        {
            throw new ArgumentException(
                $"Validation fraction {fraction} must lie in (0, 1) and leave images on both sides of {Count}.", nameof(fraction));
        }

        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        return (Subset(order.AsSpan(take)), Subset(order.AsSpan(0, take)));
    }

    private ImageSet Subset(ReadOnlySpan<int> indices)
    {
        int size = Shape.Size;
        var subsetPixels = new float[indices.Length * size];
        var subsetLabels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Image(indices[i]).CopyTo(subsetPixels.AsSpan(i * size, size));
            subsetLabels[i] = labels[indices[i]];
        }

        return new ImageSet(Shape, subsetPixels, subsetLabels, NumClasses);
    }
}
