using System.Buffers;
using Microsoft.Win32.SafeHandles;
using XNet.Architectures;

namespace XNet.MLNet.Training;

/// <summary>
/// Images and labels for the training engine, read by index: raw pixel values, channels-first, and 0-based class
/// indices. The engine knows nothing of IDataView; adapters fill this. The pixels live in memory, as given, or, when
/// every value is a whole number from 0 to 255 (what ExtractPixels, the idx and CIFAR readers and image folders give),
/// as bytes in a temporary file that is read image by image, so that a training set never has to fit in memory. A split
/// is a view over the same pixels.
/// </summary>
public sealed class ImageSet : IDisposable
{
    private readonly IImageStorage storage;
    private readonly int[]? indices;
    private readonly bool ownsStorage;

    /// <summary>Creates the set in memory; arrays are taken as they are, not copied.</summary>
    /// <exception cref="ArgumentException">When the sizes disagree or a label is outside [0, numClasses).</exception>
    public ImageSet(ImageShape shape, float[] pixels, int[] labels, int numClasses)
        : this(shape, new FloatStorage(pixels, labels, shape.Size), numClasses, indices: null, ownsStorage: true)
    {
        if (pixels.Length != (long)labels.Length * shape.Size)
        {
            throw new ArgumentException(
                $"ImageSet: {pixels.Length} pixel values do not make {labels.Length} images of {shape}.");
        }
    }

    internal ImageSet(ImageShape shape, IImageStorage storage, int numClasses, int[]? indices, bool ownsStorage)
    {
        shape.Validate("ImageSet");
        Shape = shape;
        NumClasses = numClasses;
        this.storage = storage;
        this.indices = indices;
        this.ownsStorage = ownsStorage;
        int bad = Enumerable.Range(0, Count).FirstOrDefault(i => Label(i) < 0 || Label(i) >= numClasses, -1);
        if (bad >= 0)
        {
            throw new ArgumentException($"ImageSet: label {Label(bad)} of image {bad} is outside [0, {numClasses}).");
        }
    }

    /// <summary>Shape of every image.</summary>
    public ImageShape Shape { get; }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Number of images.</summary>
    public int Count => indices?.Length ?? storage.Count;

    /// <summary>Copies the pixels of image <paramref name="index"/> into <paramref name="destination"/> (<see cref="ImageShape.Size"/> values).</summary>
    public void CopyImage(int index, Span<float> destination) => storage.CopyImage(indices?[index] ?? index, destination);

    /// <summary>The 0-based class of image <paramref name="index"/>.</summary>
    public int Label(int index) => storage.Label(indices?[index] ?? index);

    /// <summary>Per-channel mean and standard deviation over every pixel of the set.</summary>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        int channels = Shape.Channels, plane = Shape.Height * Shape.Width;
        var sum = new double[channels];
        var sumSquares = new double[channels];
        var image = new float[Shape.Size];
        for (int i = 0; i < Count; i++)
        {
            CopyImage(i, image);
            for (int c = 0; c < channels; c++)
            {
                foreach (float v in image.AsSpan(c * plane, plane))
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

    /// <summary>Splits off a random <paramref name="fraction"/> of the images (seeded) as a second set; both are views of this one.</summary>
    /// <exception cref="ArgumentException">When the fraction is not in (0, 1) or leaves either side empty.</exception>
    public (ImageSet Kept, ImageSet Held) Split(double fraction, int seed)
    {
        int take = (int)Math.Round(Count * fraction);
        if (!(fraction > 0 && fraction < 1) || take == 0 || take == Count)
        {
            throw new ArgumentException(
                string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"Validation fraction {(float)fraction} must lie in (0, 1) and leave images on both sides of {Count} (it would hold out {take})."),
                nameof(fraction));
        }

        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        int[] Storage(ReadOnlySpan<int> positions)
        {
            var mapped = new int[positions.Length];
            for (int i = 0; i < mapped.Length; i++)
            {
                mapped[i] = indices?[positions[i]] ?? positions[i];
            }

            return mapped;
        }

        return (new ImageSet(Shape, storage, NumClasses, Storage(order.AsSpan(take)), ownsStorage: false),
            new ImageSet(Shape, storage, NumClasses, Storage(order.AsSpan(0, take)), ownsStorage: false));
    }

    /// <summary>Deletes the temporary file of a file-backed set (its splits share it, so dispose them first).</summary>
    public void Dispose()
    {
        if (ownsStorage)
        {
            (storage as IDisposable)?.Dispose();
        }
    }
}

/// <summary>Where an <see cref="ImageSet"/>'s pixels and labels are kept.</summary>
internal interface IImageStorage
{
    int Count { get; }

    int Label(int index);

    void CopyImage(int index, Span<float> destination);
}

/// <summary>Pixels as given, in memory.</summary>
internal sealed class FloatStorage(float[] pixels, int[] labels, int size) : IImageStorage
{
    public int Count => labels.Length;

    public int Label(int index) => labels[index];

    public void CopyImage(int index, Span<float> destination) => pixels.AsSpan(index * size, size).CopyTo(destination);
}

/// <summary>8-bit pixels in memory, one span an image (the idx and CIFAR readers), widened to float when read.</summary>
internal sealed class ByteMemoryStorage(ReadOnlyMemory<byte>[] pixels, uint[] labels) : IImageStorage
{
    public int Count => labels.Length;

    public int Label(int index) => (int)labels[index];

    public void CopyImage(int index, Span<float> destination)
    {
        var source = pixels[index].Span;
        for (int p = 0; p < source.Length; p++)
        {
            destination[p] = source[p];
        }
    }
}

/// <summary>
/// 8-bit pixels in a file, image after image from an offset, read with positioned reads (safe from several threads; the
/// operating system's page cache, not the process, holds what is hot): a temporary file written here, or an image
/// folder's cache. Labels stay in memory: four bytes an image.
/// </summary>
internal sealed class ByteFileStorage : IImageStorage, IDisposable
{
    private readonly FileStream file;
    private readonly SafeFileHandle handle;
    private readonly List<int> labels;
    private readonly long origin;
    private readonly int size;
    private byte[]? row;

    /// <summary>An empty temporary file to <see cref="TryAppend"/> to; it is unlinked at once, so nothing is left behind.</summary>
    public ByteFileStorage(int size)
        : this(TemporaryFile(), origin: 0, size, [])
    {
    }

    /// <summary>Images of <paramref name="size"/> bytes stored in <paramref name="file"/> from <paramref name="origin"/> on, one per label.</summary>
    public ByteFileStorage(FileStream file, long origin, int size, IEnumerable<int> labels)
    {
        this.file = file;
        this.origin = origin;
        this.size = size;
        this.labels = labels.ToList();
        handle = file.SafeFileHandle;
    }

    public int Count => labels.Count;

    /// <summary>Appends an image, or returns false (writing nothing) when a value is not a whole number from 0 to 255.</summary>
    public bool TryAppend(ReadOnlySpan<float> pixels, int label)
    {
        row ??= new byte[size];
        for (int p = 0; p < size; p++)
        {
            float v = pixels[p];
            if (!(v >= 0 && v <= 255) || v != MathF.Floor(v))
            {
                return false;
            }

            row[p] = (byte)v;
        }

        RandomAccess.Write(handle, row, origin + (long)labels.Count * size);
        labels.Add(label);
        return true;
    }

    public int Label(int index) => labels[index];

    public void CopyImage(int index, Span<float> destination)
    {
        byte[] bytes = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            RandomAccess.Read(handle, bytes.AsSpan(0, size), origin + (long)index * size);
            for (int p = 0; p < size; p++)
            {
                destination[p] = bytes[p];
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    public void Dispose() => file.Dispose();

    private static FileStream TemporaryFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"xnet-images-{Guid.NewGuid():N}.bin");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Delete, 1 << 16, FileOptions.DeleteOnClose);
        if (!OperatingSystem.IsWindows())
        {
            File.Delete(path); // the open handle keeps the data; nothing is left behind even if the process is killed
        }

        return file;
    }
}
