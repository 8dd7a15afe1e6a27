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

    /// <summary>Reads an idx file of unsigned bytes with the expected rank.</summary>
    /// <exception cref="FileNotFoundException">When the file does not exist.</exception>
    /// <exception cref="InvalidDataException">When the file is not an idx file of that rank, or is truncated; the message names the file.</exception>
    public static IdxFile Read(string path, int expectedRank)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"idx file '{path}' does not exist.", path);
        }

        try
        {
            using var file = File.OpenRead(path);
            bool gzip = file.ReadByte() == 0x1F && file.ReadByte() == 0x8B;
            file.Position = 0;
            using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return Parse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), path, expectedRank);
        }
        catch (InvalidDataException ex) when (!ex.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"idx file '{path}' is corrupt: {ex.Message}", ex);
        }
    }

    private static IdxFile Parse(ReadOnlySpan<byte> bytes, string path, int expectedRank)
    {
        if (bytes.Length < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08)
        {
            throw new InvalidDataException(
                $"idx file '{path}' does not start with the magic 00 00 08 <rank> of an unsigned-byte idx file.");
        }

        int rank = bytes[3];
        if (rank != expectedRank)
        {
            throw new InvalidDataException($"idx file '{path}' has rank {rank}; expected {expectedRank}.");
        }

        var dimensions = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            if (bytes.Length < 4 + 4 * (i + 1))
            {
                throw new InvalidDataException($"idx file '{path}' is truncated inside its header.");
            }

            dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.Slice(4 + 4 * i, 4));
            if (dimensions[i] < 0)
            {
                throw new InvalidDataException($"idx file '{path}' has a negative dimension {dimensions[i]}.");
            }

            count *= dimensions[i];
        }

        int header = 4 + 4 * rank;
        if (bytes.Length - header != count)
        {
            throw new InvalidDataException(
                $"idx file '{path}' holds {bytes.Length - header} bytes of data; its header ({string.Join(" x ", dimensions)}) promises {count}.");
        }

        return new IdxFile(dimensions, bytes.Slice(header).ToArray());
    }
}
