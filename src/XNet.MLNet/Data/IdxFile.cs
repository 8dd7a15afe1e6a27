using System.Buffers.Binary;
using System.IO.Compression;

namespace XNet.MLNet.Data;

/// <summary>
/// The idx format of MNIST and Fashion-MNIST (optionally gzip-compressed): magic 00 00 08 rank, then rank big-endian
/// int32 dimensions, then unsigned bytes.
/// </summary>
public sealed class IdxFile
{
    private IdxFile(int[] dimensions, byte[] data)
    {
        Dimensions = dimensions;
        Data = data;
    }

    /// <summary>The dimensions, outermost first (count, height, width for images; count for labels).</summary>
    public IReadOnlyList<int> Dimensions { get; }

    /// <summary>The values, row-major.</summary>
    public byte[] Data { get; }

    /// <summary>The most data bytes an idx file may hold (checked against its header before anything is allocated).</summary>
    public const long MaxDataBytes = 1L << 30;

    /// <summary>Reads an idx file of unsigned bytes with the expected rank.</summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// When the file is empty (or not a regular file), not an idx file of that rank, larger than <see cref="MaxDataBytes"/>,
    /// or truncated; the message names the file.
    /// </exception>
    public static IdxFile Read(string path, int expectedRank)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"idx file '{path}' does not exist.", path);
        }

        // An empty length is also what a pipe or device reports: opening one would wait for a writer forever.
        if (new FileInfo(path).Length == 0)
        {
            throw new InvalidDataException($"idx file '{path}' is empty or not a regular file.");
        }

        try
        {
            using var file = File.OpenRead(path);
            bool gzip = file.ReadByte() == 0x1F && file.ReadByte() == 0x8B;
            file.Position = 0;
            using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
            var header = new byte[4 + 4 * expectedRank];
            if (stream.ReadAtLeast(header.AsSpan(0, 4), 4, throwOnEndOfStream: false) < 4 || header[0] != 0 || header[1] != 0 || header[2] != 0x08)
            {
                throw new InvalidDataException($"idx file '{path}' does not start with the magic 00 00 08 <rank> of an unsigned-byte idx file.");
            }

            if (header[3] != expectedRank)
            {
                throw new InvalidDataException($"idx file '{path}' has rank {header[3]}; expected {expectedRank}.");
            }

            if (stream.ReadAtLeast(header.AsSpan(4), header.Length - 4, throwOnEndOfStream: false) < header.Length - 4)
            {
                throw new InvalidDataException($"idx file '{path}' is truncated inside its header.");
            }

            var dimensions = Enumerable.Range(0, expectedRank).Select(i => BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 + 4 * i))).ToArray();
            long count = dimensions.Aggregate(1L, (product, d) => Math.Min(product * Math.Max(d, 0), MaxDataBytes + 1));
            if (dimensions.Any(d => d < 0) || count > MaxDataBytes)
            {
                throw new InvalidDataException(
                    $"idx file '{path}' has a header ({string.Join(" x ", dimensions)}) that is negative or promises more than {MaxDataBytes:N0} bytes.");
            }

            var data = new byte[count];
            int read = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
            if (read < count || stream.ReadByte() >= 0)
            {
                throw new InvalidDataException(
                    $"idx file '{path}' holds {(read < count ? $"{read}" : "more than " + count)} bytes of data; its header ({string.Join(" x ", dimensions)}) promises {count}.");
            }

            return new IdxFile(dimensions, data);
        }
        catch (InvalidDataException ex) when (!ex.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"idx file '{path}' is corrupt: {ex.Message}", ex);
        }
    }
}
