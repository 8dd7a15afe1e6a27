namespace XNet.MLNet.IO;

/// <summary>
/// The error for a path that is not the file or folder expected: one that is there as the other kind says so, where
/// "does not exist" would send the user looking for a path that is right in front of them.
/// </summary>
internal static class MissingPath
{
    /// <summary>A file that is not there: "{what} '{path}' does not exist." or "... is a folder, not a file."</summary>
    public static IOException File(string what, string path) =>
        Directory.Exists(path)
            ? new IOException($"{what} '{path}' is a folder, not a file.")
            : new FileNotFoundException($"{what} '{path}' does not exist.", path);

    /// <summary>A folder that is not there: "{what} '{path}' does not exist." or "... is a file, not a folder."</summary>
    public static IOException Folder(string what, string path) =>
        System.IO.File.Exists(path)
            ? new IOException($"{what} '{path}' is a file, not a folder.")
            : new DirectoryNotFoundException($"{what} '{path}' does not exist.");
}
