using Microsoft.ML;
using XNet.Architectures;

namespace XNet.MLNet.Data;

/// <summary>How <see cref="ImageFolderDataset"/> brings an image to the target size.</summary>
public enum ImageFolderResize
{
    /// <summary>Resize to exactly the target height and width, ignoring the aspect ratio (ML.NET's <c>ResizingKind.Fill</c>).</summary>
    Stretch,

    /// <summary>
    /// Resize so the shorter side has a given length (aspect ratio kept), then cut the target size from the centre: the
    /// evaluation transform Resize(256) + CenterCrop(224) of ImageNet models.
    /// </summary>
    ShorterSideCenterCrop,
}

/// <summary>An image folder read into memory by <see cref="ImageFolderDataset.Load"/>.</summary>
/// <param name="Data">Key-typed <c>Label</c> (KeyValues: the class names) and <c>Features</c>, <c>Vector&lt;Single, C, H, W&gt;</c>, raw 0-255.</param>
/// <param name="Shape">The image shape of every row.</param>
/// <param name="ClassNames">The class folder names, label 0 first (ordinal order).</param>
/// <param name="Files">The image file of each row, in row order.</param>
/// <param name="SkippedFiles">Files that could not be decoded and were left out (only with <c>skipUnreadable: true</c>).</param>
public sealed record ImageFolderData(IDataView Data, ImageShape Shape, IReadOnlyList<string> ClassNames, IReadOnlyList<string> Files,
    IReadOnlyList<string> SkippedFiles);

/// <summary>
/// Reads an ImageNet-style folder, <c>root/&lt;class&gt;/**/*.jpg|jpeg|png|bmp</c>, with ML.NET's image transforms
/// (LoadImages, ResizeImages, ExtractPixels planar without scaling) into an IDataView in the schema
/// <see cref="IdxDataset"/> produces. Class names are the subfolder names in ordinal order (hidden folders, starting with
/// '.', are ignored); files are found recursively and sorted. Every image is decoded once, on all cores, into a cache
/// file of bytes at the target size that later loads of the same folder reuse; the view reads it image by image, so
/// memory does not grow with the folder, and a bad file fails here, not in the middle of training.
/// </summary>
public static class ImageFolderDataset
{
    /// <summary>The file extensions read as images (case-insensitive).</summary>
    public static IReadOnlyList<string> Extensions { get; } = new[] { ".jpg", ".jpeg", ".png", ".bmp" };

    /// <summary>Loads every image under <paramref name="root"/>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="root">Folder with one subfolder per class.</param>
    /// <param name="height">Target height in pixels.</param>
    /// <param name="width">Target width in pixels.</param>
    /// <param name="channels">1 (grayscale) or 3 (RGB).</param>
    /// <param name="resize">How to reach the target size.</param>
    /// <param name="shorterSide">For <see cref="ImageFolderResize.ShorterSideCenterCrop"/>: the shorter side's length before the
    /// crop; null gives max(height, width) * 8 / 7 rounded (256 for 224, as ImageNet evaluation does).</param>
    /// <param name="skipUnreadable">Leave out files that cannot be decoded (listed in <see cref="ImageFolderData.SkippedFiles"/>)
    /// instead of throwing.</param>
    /// <param name="cacheDirectory">Where the decoded images are cached; null: <c>xnet-image-cache</c> in the temporary folder.</param>
    /// <param name="progress">Told how far the decoding has come (once, with <c>Reused</c>, when the cache was already built).</param>
    /// <exception cref="DirectoryNotFoundException">When <paramref name="root"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">When there are fewer than 2 class folders, a class folder holds no image files,
    /// or a file cannot be decoded (without <paramref name="skipUnreadable"/>); the message names the folder or file.</exception>
    /// <exception cref="ArgumentException">When the size, channel count or shorter side is invalid.</exception>
    public static ImageFolderData Load(MLContext mlContext, string root, int height, int width, int channels = 3,
        ImageFolderResize resize = ImageFolderResize.Stretch, int? shorterSide = null, bool skipUnreadable = false,
        string? cacheDirectory = null, IProgress<ImageFolderProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var shape = new ImageShape(channels, height, width);
        shape.Validate("Image folder target");
        if (channels is not (1 or 3))
        {
            throw new ArgumentException($"Image folder target: channels must be 1 (grayscale) or 3 (RGB); got {channels}.", nameof(channels));
        }

        int side = resize == ImageFolderResize.ShorterSideCenterCrop
            ? shorterSide ?? (int)Math.Round(Math.Max(height, width) * 8.0 / 7.0)
            : 0;
        if (resize == ImageFolderResize.ShorterSideCenterCrop && side < Math.Max(height, width))
        {
            throw new ArgumentException(
                $"Image folder target: the shorter side {side} must be at least the crop size {height}x{width}.", nameof(shorterSide));
        }

        var (classNames, files, labels) = Scan(root);
        var (images, unreadable) = ImageFolderCache.Open(root, files, labels, shape, resize, side, skipUnreadable, cacheDirectory, progress);
        var skipped = unreadable.Select(i => files[i]).ToArray();
        var rowFiles = files.Except(skipped).ToArray();
        return new ImageFolderData(new ByteImageDataView(shape, classNames, images), shape, classNames, rowFiles, skipped);
    }

    /// <summary>The class folders of <paramref name="root"/>: its subfolders, hidden ones (names starting with '.') left out, in ordinal order.</summary>
    internal static string[] ClassFolders(string root) =>
        Directory.GetDirectories(root)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal)
            .ToArray();

    /// <summary>Whether a file is read as an image: by its extension, one of <see cref="Extensions"/> in any letter case.</summary>
    internal static bool IsImageFile(string path) => Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>The class names (sorted subfolders) and the image files with their 0-based labels.</summary>
    internal static (string[] ClassNames, List<string> Files, List<uint> Labels) Scan(string root)
    {
        if (!Directory.Exists(root))
        {
            throw IO.MissingPath.Folder("Image folder", root);
        }

        var classDirs = ClassFolders(root);
        if (classDirs.Length == 0)
        {
            throw new InvalidDataException(
                $"Image folder '{root}' has no class subfolders; expected one folder per class holding its images (root/<class>/<image>.jpg).");
        }

        var classNames = classDirs.Select(d => Path.GetFileName(d)).ToArray();
        if (classNames.Length < 2)
        {
            throw new InvalidDataException($"Image folder '{root}' needs at least 2 classes, found 1: '{classNames[0]}'.");
        }

        var files = new List<string>();
        var labels = new List<uint>();
        for (int c = 0; c < classDirs.Length; c++)
        {
            var images = ImageFiles(new DirectoryInfo(classDirs[c])).OrderBy(f => f, StringComparer.Ordinal).ToArray();
            if (images.Length == 0)
            {
                throw new InvalidDataException(
                    $"Class folder '{classDirs[c]}' holds no image files ({string.Join(", ", Extensions)}); remove the folder or add images.");
            }

            files.AddRange(images);
            labels.AddRange(Enumerable.Repeat((uint)c, images.Length));
        }

        return (classNames, files, labels);
    }

    /// <summary>
    /// The image files at or below <paramref name="entry"/>; hidden entries (names starting with '.') are left out. Symbolic links are refused by name, not followed: a loop would
    /// repeat images, and a link into another class would train its images under this class's label.
    /// </summary>
    private static IEnumerable<string> ImageFiles(FileSystemInfo entry)
    {
        if (entry.LinkTarget is string target)
        {
            throw new InvalidDataException(
                $"Image folder entry '{entry.FullName}' is a symbolic link (to '{target}'); links are not followed. Replace it with the file or folder it points to.");
        }

        if (entry is FileInfo file)
        {
            if (IsImageFile(file.Name))
            {
                yield return file.FullName;
            }

            yield break;
        }

        foreach (var child in ((DirectoryInfo)entry).EnumerateFileSystemInfos())
        {
            foreach (string image in ImageFiles(child))
            {
                yield return image;
            }
        }
    }
}
