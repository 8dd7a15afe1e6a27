namespace XNet.MLNet.IO;

/// <summary>
/// Checks the entries of a zip (model files, ML.NET zips) against the sizes and CRC-32 its directory records: .NET's
/// <c>ZipArchive</c> inflates entries without checking them, so altered bytes would otherwise load as different weights,
/// and an entry that inflates without end (a zip bomb) would fill the memory.
/// </summary>
internal static class ZipIntegrity
{
    /// <summary>The most an X-Net file, checkpoint or ML.NET zip may hold, all entries together (several times the largest zoo model).</summary>
    public const long MaxBytes = 512L << 20;

    /// <summary>Reads every entry of <paramref name="zip"/> and compares its size and CRC-32 with the recorded ones.</summary>
    /// <exception cref="InvalidDataException">When an entry is too large or does not match; the message names the entry.</exception>
    public static void Verify(System.IO.Compression.ZipArchive zip)
    {
        // Summed, so entries that overlap one huge compressed stream count once each, as they would inflate.
        long declared = zip.Entries.Sum(e => e.Length);
        if (declared > MaxBytes)
        {
            throw new InvalidDataException($"its entries declare {declared:N0} bytes, more than the {MaxBytes:N0} allowed");
        }

        var buffer = new byte[1 << 16];
        foreach (var entry in zip.Entries)
        {
            var crc = new System.IO.Hashing.Crc32();
            long total = 0;
            using var stream = entry.Open();
            for (int read; (read = stream.Read(buffer)) > 0;)
            {
                if ((total += read) > entry.Length)
                {
                    throw new InvalidDataException($"its entry '{entry.FullName}' inflates beyond the {entry.Length:N0} bytes it declares");
                }

                crc.Append(buffer.AsSpan(0, read));
            }

            if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
            {
                throw new InvalidDataException($"its entry '{entry.FullName}' does not match its recorded CRC-32 (the file was altered or damaged)");
            }
        }
    }
}
