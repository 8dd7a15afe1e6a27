namespace XNet.MLNet.IO;

/// <summary>
/// Writes a file so that readers (and a process killed at any moment) see either the old file or the complete new one:
/// the content goes to a temporary file beside the target, is flushed to disk, then renamed over the target.
/// </summary>
public static class AtomicFile
{
    /// <summary>Prefix of the temporary files; a crash can leave one behind, which <see cref="DeleteStale"/> removes.</summary>
    public const string TemporaryPrefix = ".xnet-tmp-";

    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/>; on failure the target is untouched.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        string temp = Path.Combine(directory, $"{TemporaryPrefix}{Path.GetFileName(full)}-{Guid.NewGuid():N}");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or ArgumentOutOfRangeException { ParamName: "value" })
        {
            // A full disk (ENOSPC), or a file-size limit (EFBIG, which .NET reports as an ArgumentOutOfRangeException).
            throw new IOException($"Could not write '{full}': {ex.Message}", ex);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Writes text lines atomically.</summary>
    public static void WriteAllLines(string path, IEnumerable<string> lines) => Write(path, stream =>
    {
        using var writer = new StreamWriter(stream, leaveOpen: true);
        foreach (string line in lines)
        {
            writer.WriteLine(line);
        }
    });

    /// <summary>Deletes temporary files that a killed process left in <paramref name="directory"/>.</summary>
    public static void DeleteStale(string directory)
    {
        if (Directory.Exists(directory))
        {
            foreach (string stale in Directory.EnumerateFiles(directory, TemporaryPrefix + "*"))
            {
                File.Delete(stale);
            }
        }
    }
}
