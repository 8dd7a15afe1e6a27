using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using XNet.Architectures;
using XNet.MLNet.IO;
using XNet.MLNet.Training;

namespace XNet.MLNet.Data;

/// <summary>How far the decoding of an image folder into its cache has come.</summary>
/// <param name="Folder">The image folder.</param>
/// <param name="Done">Images decoded (or found unreadable) so far.</param>
/// <param name="Total">Images in the folder.</param>
/// <param name="Reused">True when the folder's cache was already there and nothing is decoded.</param>
public sealed record ImageFolderProgress(string Folder, int Done, int Total, bool Reused);

/// <summary>
/// The decoded images of an image folder at one input size, as bytes in one file under a cache directory: built once, in
/// parallel and in bounded memory, and reused by every later load of the same folder at the same size, in this process
/// or another. Its name holds a hash of everything that decides its content (each file's path, length and modification
/// time, the size, channels and resizing), so a changed folder gets a new cache and the stale one of that folder and size
/// is deleted. The file is written atomically; one that does not check out is rebuilt.
/// </summary>
/// <remarks>
/// Layout: a 32-byte header (magic, version, channels, height, width, readable and unreadable counts), the readable
/// images in file order, C x H x W bytes each, then the indices of the unreadable files (4 bytes each).
/// </remarks>
internal static class ImageFolderCache
{
    private const string Magic = "XNETIMGC";
    private const int Version = 1;
    private const int HeaderBytes = 32;
    private const int ChunkFiles = 512;

    /// <summary>Where caches go when no directory is given: <c>xnet-image-cache</c> in the temporary folder.</summary>
    public static string DefaultDirectory => Path.Combine(Path.GetTempPath(), "xnet-image-cache");

    /// <summary>
    /// Opens the cache of <paramref name="files"/> at <paramref name="shape"/>, building it first when there is none.
    /// Returns the readable images (labelled from <paramref name="labels"/>) and the indices of the unreadable files.
    /// </summary>
    /// <exception cref="InvalidDataException">When a file cannot be decoded and <paramref name="skipUnreadable"/> is false; names the file.</exception>
    /// <exception cref="IOException">When the cache cannot be written; names the file.</exception>
    public static (ByteFileStorage Images, int[] Unreadable) Open(string root, IReadOnlyList<string> files, IReadOnlyList<uint> labels,
        ImageShape shape, ImageFolderResize resize, int shorterSide, bool skipUnreadable, string? directory,
        IProgress<ImageFolderProgress>? progress)
    {
        directory = Path.GetFullPath(directory ?? DefaultDirectory);
        string settings = $"{shape.Channels}x{shape.Height}x{shape.Width} {resize} {shorterSide} skip={skipUnreadable}";
        string folderKey = Hash(Path.GetFullPath(root) + "\n" + settings);
        var content = new StringBuilder($"{Magic} {Version} {settings}\n");
        foreach (string file in files)
        {
            var info = new FileInfo(file);
            content.Append(Path.GetRelativePath(root, file)).Append('\t').Append(info.Length).Append('\t')
                .Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }

        string name = $"{Sanitize(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(root))))}-{shape.Channels}x{shape.Height}x{shape.Width}-{folderKey}";
        string path = Path.Combine(directory, $"{name}-{Hash(content.ToString())}.xcache");
        var opened = TryOpen(path, files.Count, shape, labels);
        if (opened is not null)
        {
            progress?.Report(new ImageFolderProgress(root, files.Count, files.Count, Reused: true));
            return opened.Value;
        }

        AtomicFile.DeleteStale(directory);
        foreach (string stale in Directory.Exists(directory) ? Directory.EnumerateFiles(directory, $"{name}-*.xcache") : [])
        {
            File.Delete(stale);
        }

        AtomicFile.Write(path, stream => Build((FileStream)stream, root, files, shape, resize, shorterSide, skipUnreadable, progress));
        return TryOpen(path, files.Count, shape, labels)
            ?? throw new IOException($"The image cache '{path}' was written but does not read back; delete it and try again.");
    }

    private static void Build(FileStream file, string root, IReadOnlyList<string> files, ImageShape shape, ImageFolderResize resize,
        int shorterSide, bool skipUnreadable, IProgress<ImageFolderProgress>? progress)
    {
        var ml = new MLContext();
        int loadSide = resize == ImageFolderResize.ShorterSideCenterCrop ? shorterSide : 0;
        var loadShape = loadSide > 0 ? new ImageShape(shape.Channels, loadSide, loadSide) : shape;
        const string image = "XNetImage";
        var pixelsOf = ml.Transforms.LoadImages(image, imageFolder: null, nameof(PathRow.ImagePath))
            .Append(ImageFileInput.CreateImagePipeline(ml, loadShape, image, "Features",
                loadSide > 0 ? ImageResizingEstimator.ResizingKind.IsoCrop : ImageResizingEstimator.ResizingKind.Fill))
            .Fit(ml.Data.LoadFromEnumerable(Array.Empty<PathRow>()));

        var unreadable = new List<int>();
        var reasons = new string?[ChunkFiles];
        var bytes = new byte[shape.Size];
        int readable = 0;
        progress?.Report(new ImageFolderProgress(root, 0, files.Count, Reused: false));
        for (int start = 0; start < files.Count; start += ChunkFiles)
        {
            int count = Math.Min(ChunkFiles, files.Count - start);

            // ML.NET's decoder fills the missing rows of a truncated file in silently, and its cursor reports a failure
            // on a worker thread without the file: every file is checked on its own first, on all cores.
            Parallel.For(0, count, i => reasons[i] = Unreadable(files[start + i]));
            var rows = new List<PathRow>(count);
            for (int i = 0; i < count; i++)
            {
                if (reasons[i] is string reason)
                {
                    if (!skipUnreadable)
                    {
                        throw new InvalidDataException(
                            $"Image file '{files[start + i]}' could not be read as an image: {reason}. Remove or replace it, or load with skipUnreadable: true.");
                    }

                    unreadable.Add(start + i);
                }
                else
                {
                    rows.Add(new PathRow { ImagePath = files[start + i], Slot = readable++ });
                }
            }

            // ML.NET runs the image transforms of one cursor on several threads; rows are written to their own slots,
            // whatever order they arrive in.
            var decoded = pixelsOf.Transform(ml.Data.LoadFromEnumerable(rows));
            var features = decoded.Schema["Features"];
            var slot = decoded.Schema[nameof(PathRow.Slot)];
            using var cursor = decoded.GetRowCursor(new[] { features, slot });
            var getPixels = cursor.GetGetter<VBuffer<float>>(features);
            var getSlot = cursor.GetGetter<int>(slot);
            VBuffer<float> buffer = default;
            int at = 0;
            while (cursor.MoveNext())
            {
                getSlot(ref at);
                try
                {
                    getPixels(ref buffer);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    string failed = rows[at - rows[0].Slot].ImagePath;
                    throw new InvalidDataException($"Image file '{failed}' could not be read as an image: {ex.GetBaseException().Message}", ex);
                }

                CutCentre(buffer.GetValues(), loadShape, shape, bytes);
                RandomAccess.Write(file.SafeFileHandle, bytes, HeaderBytes + (long)at * shape.Size);
            }

            progress?.Report(new ImageFolderProgress(root, start + count, files.Count, Reused: false));
        }

        if (readable == 0)
        {
            throw new InvalidDataException($"Image folder '{root}' has no readable image: all {unreadable.Count} image files failed to decode.");
        }

        var trailer = new byte[unreadable.Count * 4];
        for (int i = 0; i < unreadable.Count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(trailer.AsSpan(i * 4), unreadable[i]);
        }

        RandomAccess.Write(file.SafeFileHandle, trailer, HeaderBytes + (long)readable * shape.Size);
        RandomAccess.Write(file.SafeFileHandle, Header(shape, readable, unreadable.Count), 0);
    }

    /// <summary>The cache at <paramref name="path"/>, or null when there is none or it does not match what it should hold.</summary>
    private static (ByteFileStorage, int[])? TryOpen(string path, int fileCount, ImageShape shape, IReadOnlyList<uint> labels)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        try
        {
            var header = new byte[HeaderBytes];
            bool complete = RandomAccess.Read(file.SafeFileHandle, header, 0) == HeaderBytes;
            int readable = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(24));
            int unreadableCount = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(28));
            bool valid = complete && header.SequenceEqual(Header(shape, readable, unreadableCount))
                && readable >= 0 && unreadableCount >= 0 && readable + unreadableCount == fileCount
                && file.Length == HeaderBytes + (long)readable * shape.Size + 4L * unreadableCount;
            if (!valid)
            {
                file.Dispose();
                return null;
            }

            var trailer = new byte[4 * unreadableCount];
            RandomAccess.Read(file.SafeFileHandle, trailer, HeaderBytes + (long)readable * shape.Size);
            var unreadable = Enumerable.Range(0, unreadableCount).Select(i => BinaryPrimitives.ReadInt32LittleEndian(trailer.AsSpan(i * 4))).ToArray();
            var skipped = unreadable.ToHashSet();
            if (skipped.Count != unreadableCount || unreadable.Any(i => i < 0 || i >= fileCount))
            {
                file.Dispose();
                return null;
            }

            var readableLabels = Enumerable.Range(0, fileCount).Where(i => !skipped.Contains(i)).Select(i => (int)labels[i]);
            return (new ByteFileStorage(file, HeaderBytes, shape.Size, readableLabels), unreadable);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static byte[] Header(ImageShape shape, int readable, int unreadable)
    {
        var header = new byte[HeaderBytes];
        Encoding.ASCII.GetBytes(Magic).CopyTo(header, 0);
        int[] fields = [Version, shape.Channels, shape.Height, shape.Width, readable, unreadable];
        for (int i = 0; i < fields.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8 + 4 * i), fields[i]);
        }

        return header;
    }

    /// <summary>Why <paramref name="path"/> cannot be read as a whole image, or null when it can.</summary>
    private static string? Unreadable(string path)
    {
        try
        {
            if (new FileInfo(path).Length == 0)
            {
                // Also what a pipe or a device reports: opening one would wait for a writer forever.
                return "it is empty or not a regular file";
            }

            ImageFileInput.CheckComplete(path);
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return ex.GetBaseException().Message;
        }
    }

    /// <summary>Planar 0-255 floats of a <paramref name="loaded"/> image to bytes, cutting the centred <paramref name="target"/> window.</summary>
    private static void CutCentre(ReadOnlySpan<float> values, ImageShape loaded, ImageShape target, Span<byte> bytes)
    {
        int top = (loaded.Height - target.Height) / 2, left = (loaded.Width - target.Width) / 2;
        int i = 0;
        for (int c = 0; c < target.Channels; c++)
        {
            for (int y = 0; y < target.Height; y++)
            {
                int offset = (c * loaded.Height + top + y) * loaded.Width + left;
                for (int x = 0; x < target.Width; x++)
                {
                    bytes[i++] = (byte)Math.Clamp(MathF.Round(values[offset + x]), 0, 255);
                }
            }
        }
    }

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0, 8).ToLowerInvariant();

    private static string Sanitize(string name) =>
        new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').Take(40).ToArray());

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";

        public int Slot { get; set; }
    }
}
