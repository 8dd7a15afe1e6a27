using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Spectre.Console;
using XNet.Tests.Shared;

namespace XNet.Cli.Tests;

/// <summary>One run of <c>xnet</c> in a hostile case: what a user would see.</summary>
/// <param name="CommandLine">The command, for the failure message.</param>
/// <param name="ExitCode">The exit code; <see cref="HostileCases.UnhandledExceptionExit"/> (SIGABRT) for an exception that
/// escaped <c>XNetApp.Run</c> in-process (a real process aborts with it) or a native abort in a child process,
/// <see cref="HostileCases.TimedOutExit"/> for a hang.</param>
/// <param name="Output">Standard output (Spectre's 80-column wrapping of the error line undone for child processes), then standard error.</param>
/// <param name="TimedOut">Whether the run was still going at its time limit (a child process is then killed).</param>
/// <param name="AllocatedBytes">Managed bytes allocated during an in-process run (all threads); null for a child process.</param>
/// <param name="Limit">The time limit it ran under.</param>
internal sealed record HostileRun(string CommandLine, int ExitCode, string Output, bool TimedOut, long? AllocatedBytes, TimeSpan Limit);

/// <summary>
/// Shared helpers of the hostile-input catalogue (Hostile*Tests): running <c>xnet</c> in-process (XNetRunner) or as a
/// child process with memory, file-size and time limits, the one assertion every case makes (exit code, one
/// <c>error:</c> line naming the culprit, no stack trace, nothing written or overwritten), and tools to damage files.
/// </summary>
internal static class HostileCases
{
    /// <summary>The exit code of a .NET process whose exception was not handled (SIGABRT).</summary>
    public const int UnhandledExceptionExit = 134;

    /// <summary>Stands for "did not exit within its limit".</summary>
    public const int TimedOutExit = -1;

    /// <summary>Managed bytes a run may allocate when it meets a bomb: a sane reader stops long before (a normal predict allocates far less).</summary>
    public const long BombAllocationBudget = 96L << 20;

    /// <summary>Child processes get this much address space (KiB): enough for a tiny training run, far too little for an absurd allocation, so it fails instead of swapping the machine.</summary>
    public const long ChildMemoryKb = 8_000_000;

    private static readonly TimeSpan InProcessLimit = TimeSpan.FromSeconds(90);

    /// <summary>The built <c>xnet.dll</c> beside the tests.</summary>
    public static string Xnet => Path.Combine(AppContext.BaseDirectory, "xnet.dll");

    /// <summary>
    /// Runs <c>xnet</c> in-process with <see cref="XNetRunner"/>. An exception that escapes <c>XNetApp.Run</c> becomes exit
    /// code 134 and an "Unhandled exception." dump, as the real process prints it; a run past the time limit is reported as hung.
    /// </summary>
    public static HostileRun Run(params string[] args)
    {
        string commandLine = CommandLine(args);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var task = Task.Run(() =>
        {
            try
            {
                return XNetRunner.Run(args);
            }
            catch (Exception ex)
            {
                // XNetRunner's console (a StringWriter) is still the current one: keep what was printed before the crash.
                string printed = AnsiConsole.Console.Profile.Out.Writer.ToString() ?? "";
                return (UnhandledExceptionExit, printed + "Unhandled exception. " + ex + "\n");
            }
        });
        if (!task.Wait(InProcessLimit))
        {
            return new HostileRun(commandLine, TimedOutExit, $"(no exit after {InProcessLimit.TotalSeconds:0} s; the in-process run was abandoned)",
                true, null, InProcessLimit);
        }

        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        var (exitCode, output) = task.Result;
        return new HostileRun(commandLine, exitCode, output, false, allocated, InProcessLimit);
    }

    /// <summary>
    /// Runs <c>dotnet xnet.dll</c> as a child process under <c>ulimit -v</c> (<paramref name="memoryKb"/>) and optionally
    /// <c>ulimit -f</c> (<paramref name="fileSizeKb"/>, with SIGXFSZ ignored so a write past it fails with EFBIG, as a full disk
    /// fails a write), killed after <paramref name="timeout"/>. For cases that may hang (FIFOs, loops), allocate absurd amounts
    /// or abort the process.
    /// </summary>
    public static HostileRun RunIsolated(TimeSpan timeout, string[] args, long memoryKb = ChildMemoryKb, long? fileSizeKb = null)
    {
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (fileSizeKb is not null)
        {
            // CoreCLR's W^X double mapping backs code memory with a large memfd, which a file-size limit refuses at start-up.
            start.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        }

        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"trap '' XFSZ; ulimit -v {memoryKb}; {(fileSizeKb is long f ? $"ulimit -f {f}; " : "")}exec dotnet \"$@\"");
        start.ArgumentList.Add("xnet");
        start.ArgumentList.Add(Xnet);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        string commandLine = CommandLine(args) + $"   [child process, ulimit -v {memoryKb}" + (fileSizeKb is long l ? $", ulimit -f {l}" : "") + $", killed after {timeout.TotalSeconds:0} s]";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        bool exited = process.WaitForExit(timeout);
        if (!exited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        string output = Unwrap(stdout.Result) + stderr.Result;
        if (!exited)
        {
            output = $"(no exit after {timeout.TotalSeconds:0} s; killed)\n" + output;
        }

        return new HostileRun(commandLine, exited ? process.ExitCode : TimedOutExit, output, !exited, null, timeout);
    }

    /// <summary>
    /// The one assertion of a refused case: exit code, one <c>error:</c> line naming every <paramref name="mustName"/> (an
    /// entry "a||b" is met by either), no stack trace.
    /// </summary>
    public static void AssertOneErrorLine(HostileRun run, int expectedExit, params string[] mustName) =>
        AssertRefused(run, expectedExit, mustName);

    /// <summary>
    /// <see cref="AssertOneErrorLine"/> and, where given: the files under <paramref name="unchanged"/> are byte-identical, the
    /// <paramref name="absent"/> paths do not exist, no temporary or partial file (<c>.xnet-tmp-*</c>) lies in
    /// <paramref name="clean"/>, the run allocated at most <paramref name="maxAllocated"/> bytes and its output does not say
    /// any of <paramref name="mustNotSay"/>. Every problem is listed in one failure with the command and its first output lines.
    /// </summary>
    public static void AssertRefused(HostileRun run, int expectedExit, string[] mustName, Snapshot? unchanged = null,
        IEnumerable<string>? absent = null, IEnumerable<string>? clean = null, long? maxAllocated = null, IEnumerable<string>? mustNotSay = null)
    {
        var problems = new List<string>();
        string[] lines = Lines(run.Output);
        problems.AddRange(ExitProblems(run, expectedExit));

        var errors = lines.Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
        if (errors.Length != 1)
        {
            problems.Add($"{errors.Length} lines start with 'error:', expected 1");
        }
        else
        {
            // "a||b": either names the culprit (a usage error may name the flag or the value).
            foreach (string name in mustName)
            {
                var either = name.Split("||");
                if (!either.Any(n => errors[0].Contains(n, StringComparison.Ordinal)))
                {
                    problems.Add($"the error line does not name {string.Join(" or ", either.Select(n => $"'{n}'"))}");
                }
            }
        }

        problems.AddRange(StackTraceProblems(lines, errors.FirstOrDefault()));
        foreach (string phrase in mustNotSay ?? [])
        {
            if (run.Output.Contains(phrase, StringComparison.Ordinal))
            {
                problems.Add($"the output says '{phrase}', which is not what happened");
            }
        }

        AddFileProblems(problems, unchanged, absent, clean);
        if (maxAllocated is long budget && run.AllocatedBytes is long allocated && allocated > budget)
        {
            problems.Add($"no size cap: the run allocated {allocated >> 20:N0} MB (budget {budget >> 20:N0} MB)");
        }

        Report(run, problems);
    }

    /// <summary>
    /// A resume whose newest checkpoint is damaged while an older one is good: it succeeds from the older one, says which
    /// checkpoint it skipped (naming <paramref name="skipped"/>) and which it resumed from, with no error line and no stack trace.
    /// </summary>
    public static void AssertFallsBack(HostileRun run, string skipped, string resumedFrom)
    {
        var problems = new List<string>();
        string[] lines = Lines(run.Output);
        problems.AddRange(ExitProblems(run, 0, "resume from the older checkpoint"));

        // A child process writes to a pipe, where the console wraps at 80 columns: a long path may span lines.
        string unwrapped = string.Join("", lines.TakeWhile(l => !l.StartsWith("error:", StringComparison.Ordinal)).Select(l => l.TrimEnd()));
        if (!unwrapped.Contains(skipped, StringComparison.Ordinal))
        {
            problems.Add($"no line names the skipped checkpoint '{skipped}'");
        }

        if (!run.Output.Replace("\n", "", StringComparison.Ordinal).Contains($"Resuming from {resumedFrom}", StringComparison.Ordinal))
        {
            problems.Add($"does not say 'Resuming from {resumedFrom}'");
        }

        problems.AddRange(NoErrorLineProblems(lines));

        problems.AddRange(StackTraceProblems(lines, null));
        Report(run, problems);
    }

    /// <summary>A hang, or an exit code other than <paramref name="expected"/> (with <paramref name="why"/> in the message).</summary>
    private static IEnumerable<string> ExitProblems(HostileRun run, int expected, string? why = null)
    {
        if (run.TimedOut)
        {
            yield return $"hangs: no exit within {run.Limit.TotalSeconds:0} s";
        }
        else if (run.ExitCode != expected)
        {
            yield return $"exit code {Describe(run.ExitCode)}, expected {expected}{(why is null ? "" : $" ({why})")}";
        }
    }

    /// <summary>Lines starting with <c>error:</c> in a run that should have none.</summary>
    private static IEnumerable<string> NoErrorLineProblems(string[] lines)
    {
        int errors = lines.Count(l => l.StartsWith("error:", StringComparison.Ordinal));
        if (errors > 0)
        {
            yield return $"{errors} lines start with 'error:', expected none";
        }
    }

    /// <summary>A case the CLI should take in its stride: exit code 0, no <c>error:</c> line, no stack trace.</summary>
    public static void AssertAccepted(HostileRun run)
    {
        var problems = new List<string>();
        string[] lines = Lines(run.Output);
        problems.AddRange(ExitProblems(run, 0));
        problems.AddRange(NoErrorLineProblems(lines));

        problems.AddRange(StackTraceProblems(lines, null));
        Report(run, problems);
    }

    /// <summary>A case that must run (e.g. a fixture step) and did not.</summary>
    public static void AssertSucceeded(HostileRun run)
    {
        if (run.ExitCode != 0)
        {
            Assert.Fail($"setup run failed: {run.CommandLine}\nexit code {Describe(run.ExitCode)}\n{run.Output}");
        }
    }

    private static IEnumerable<string> StackTraceProblems(string[] lines, string? errorLine)
    {
        if (lines.Any(l => l.StartsWith("   at ", StringComparison.Ordinal)))
        {
            yield return "a stack trace reaches the user";
        }

        string? dump = lines.FirstOrDefault(l => !ReferenceEquals(l, errorLine)
                                                 && (l.Contains("Exception:", StringComparison.Ordinal) || l.StartsWith("Unhandled exception", StringComparison.Ordinal)));
        if (dump is not null)
        {
            yield return $"an exception dump reaches the user ('{Shorten(dump, 160)}')";
        }

        if (lines.FirstOrDefault(l => l.StartsWith("terminate called", StringComparison.Ordinal)) is string abort)
        {
            yield return $"a native crash reaches the user ('{Shorten(abort, 160)}')";
        }
    }

    private static void AddFileProblems(List<string> problems, Snapshot? unchanged, IEnumerable<string>? absent, IEnumerable<string>? clean)
    {
        if (unchanged is not null)
        {
            problems.AddRange(unchanged.Differences());
        }

        foreach (string path in absent ?? [])
        {
            if (File.Exists(path) || Directory.Exists(path))
            {
                problems.Add($"'{path}' was written");
            }
        }

        foreach (string folder in clean ?? [])
        {
            if (Directory.Exists(folder))
            {
                foreach (string partial in Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
                             .Where(p => Path.GetFileName(p).StartsWith(".xnet-tmp-", StringComparison.Ordinal)))
                {
                    problems.Add($"a partial file is left behind: '{partial}'");
                }
            }
        }
    }

    private static void Report(HostileRun run, List<string> problems)
    {
        // Kept with the test result whether it passes or fails: what the user saw.
        Console.WriteLine($"command: {run.CommandLine}\nexit code: {Describe(run.ExitCode)}\noutput (first lines):\n{FirstLines(run.Output, 6)}");
        if (problems.Count > 0)
        {
            Assert.Fail($"{string.Join("; ", problems)}\n  command: {run.CommandLine}\n  exit code: {Describe(run.ExitCode)}\n" +
                        $"  output (first lines):\n{FirstLines(run.Output, 6)}");
        }
    }

    private static string Describe(int exitCode) => exitCode switch
    {
        UnhandledExceptionExit => $"{exitCode} (SIGABRT: an unhandled exception or a native abort)",
        TimedOutExit => "none (hung)",
        _ => exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string[] Lines(string output) => output.Replace("\r", "", StringComparison.Ordinal).Split('\n');

    /// <summary>
    /// The first <paramref name="count"/> non-empty lines, then any later line that says how the run ended (the
    /// <c>error:</c> line, an unhandled exception, a native abort).
    /// </summary>
    public static string FirstLines(string output, int count)
    {
        string[] endings = ["error:", "Unhandled exception", "terminate called", "Fatal error", "Aborted", "Segmentation fault", "(no exit after"];
        var lines = Lines(output).Where(l => l.Trim().Length > 0).ToList();
        var shown = lines.Take(count).ToList();
        var later = lines.Skip(count).Where(l => endings.Any(e => l.StartsWith(e, StringComparison.Ordinal))).Take(3).ToList();
        if (later.Count > 0)
        {
            shown.Add("...");
            shown.AddRange(later);
        }

        return string.Join("\n", shown.Select(l => "    | " + Shorten(l, 400)));
    }

    private static string Shorten(string text, int length) => text.Length <= length ? text : text[..length] + "...";

    private static string CommandLine(string[] args) =>
        "xnet " + string.Join(" ", args.Select(a => a.Length == 0 || a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a));

    /// <summary>
    /// Undoes Spectre's 80-column wrapping of redirected output for the error line: <c>CliErrors</c> prints it last, so
    /// every line after it is its continuation (Spectre keeps the space it breaks at).
    /// </summary>
    private static string Unwrap(string stdout)
    {
        var lines = Lines(stdout).ToList();
        int error = lines.FindIndex(l => l.StartsWith("error:", StringComparison.Ordinal));
        if (error < 0)
        {
            return stdout;
        }

        string joined = string.Concat(lines.Skip(error));
        return string.Join("\n", lines.Take(error).Append(joined)) + "\n";
    }

    // ---- files and folders ----

    /// <summary>Creates a named pipe (a FIFO): opening it for reading blocks until a writer comes.</summary>
    public static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", new[] { path })!;
        mkfifo.WaitForExit();
        Assert.AreEqual(0, mkfifo.ExitCode, $"mkfifo {path}");
    }

    /// <summary>A file of <paramref name="length"/> bytes that takes no disk space (a hole).</summary>
    public static void MakeSparse(string path, long length)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        file.SetLength(length);
    }

    /// <summary>Copies a folder (files and subfolders).</summary>
    public static void CopyFolder(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        foreach (string folder in Directory.GetDirectories(source))
        {
            CopyFolder(folder, Path.Combine(target, Path.GetFileName(folder)));
        }
    }

    /// <summary>Cuts a file to <paramref name="length"/> bytes.</summary>
    public static void Truncate(string path, long length)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(length);
    }

    /// <summary>A tiny valid 32x32 BMP.</summary>
    public static string WriteImage(string path, int size = 32, int seed = 1)
    {
        GeneratedDatasets.WriteBmp(path, GeneratedDatasets.Pattern(size, size, seed));
        return path;
    }

    /// <summary>
    /// A PNG whose header claims <paramref name="width"/> x <paramref name="height"/> RGB pixels (40 GB at 100000 x 100000)
    /// but holds a few bytes of image data: a decompression bomb for image decoders.
    /// </summary>
    public static void WritePngBomb(string path, int width, int height)
    {
        using var file = File.Create(path);
        file.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 2; // RGB
        Chunk(file, "IHDR", header);
        using (var data = new MemoryStream())
        {
            using (var zlib = new ZLibStream(data, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                zlib.Write(new byte[64 << 10]);
            }

            Chunk(file, "IDAT", data.ToArray());
        }

        Chunk(file, "IEND", []);

        static void Chunk(Stream stream, string type, byte[] data)
        {
            var length = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
            stream.Write(length);
            byte[] typeAndData = [.. Encoding.ASCII.GetBytes(type), .. data];
            stream.Write(typeAndData);
            var crc = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32.HashToUInt32(typeAndData));
            stream.Write(crc);
        }
    }
}

/// <summary>Every file under a folder (or one file) by SHA-256, to show afterwards that nothing was written, removed or overwritten.</summary>
internal sealed class Snapshot
{
    private readonly string root;
    private readonly Dictionary<string, string> entries;

    private Snapshot(string root, Dictionary<string, string> entries)
    {
        this.root = root;
        this.entries = entries;
    }

    /// <summary>Records <paramref name="path"/> (a regular file or a folder of regular files) now.</summary>
    public static Snapshot Of(string path) => new(path, Read(path));

    /// <summary>What changed since the snapshot, one line each.</summary>
    public IEnumerable<string> Differences()
    {
        var now = Read(root);
        foreach (var (path, hash) in entries)
        {
            if (!now.TryGetValue(path, out string? current))
            {
                yield return $"'{path}' was removed";
            }
            else if (current != hash)
            {
                yield return $"'{path}' was overwritten";
            }
        }

        foreach (string path in now.Keys.Except(entries.Keys))
        {
            yield return $"'{path}' was written";
        }
    }

    private static Dictionary<string, string> Read(string path)
    {
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        if (new FileInfo(path).LinkTarget is string link)
        {
            found[path] = "link:" + link;
        }
        else if (File.Exists(path))
        {
            found[path] = Hash(path);
        }
        else if (Directory.Exists(path))
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(path, "*", SearchOption.AllDirectories))
            {
                var info = new FileInfo(entry);
                found[entry] = info.LinkTarget is string target ? "link:" + target
                    : Directory.Exists(entry) ? "folder"
                    : Hash(entry);
            }
        }

        return found;
    }

    // A named pipe reports length 0 and would block a read: empty files are recorded by their length alone.
    private static string Hash(string file) =>
        new FileInfo(file).Length == 0 ? "empty" : Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));
}

/// <summary>Zip surgery for the model-file and checkpoint cases.</summary>
internal static class HostileZip
{
    /// <summary>The entries of a zip, in order, with their content.</summary>
    public static List<(string Name, byte[] Content)> Read(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        return zip.Entries.Select(e =>
        {
            using var stream = e.Open();
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return (e.FullName, buffer.ToArray());
        }).ToList();
    }

    /// <summary>Writes a well-formed zip (CRCs right) of the given entries.</summary>
    public static void Write(string path, IEnumerable<(string Name, byte[] Content)> entries)
    {
        File.Delete(path);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, content) in entries)
        {
            using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
            stream.Write(content);
        }
    }

    /// <summary>Rewrites a zip with <paramref name="edit"/> applied to each entry (null drops it); the result is a consistent zip.</summary>
    public static void Edit(string path, Func<string, byte[], byte[]?> edit)
    {
        var entries = Read(path).Select(e => (e.Name, Content: edit(e.Name, e.Content))).Where(e => e.Content is not null).ToList();
        Write(path, entries.Select(e => (e.Name, e.Content!)));
    }

    /// <summary>Replaces one entry's content.</summary>
    public static void Replace(string path, string entry, byte[] content) =>
        Edit(path, (name, old) => name == entry ? content : old);

    /// <summary>Edits the JSON object of one entry.</summary>
    public static void EditJson(string path, string entry, Action<JsonObject> edit) =>
        Edit(path, (name, content) =>
        {
            if (name != entry)
            {
                return content;
            }

            var json = JsonNode.Parse(content)!.AsObject();
            edit(json);
            return Encoding.UTF8.GetBytes(json.ToJsonString());
        });

    /// <summary>Writes a zip whose <paramref name="entry"/> inflates to <paramref name="prefix"/>, <paramref name="fill"/> repeated <paramref name="fillBytes"/> times, and <paramref name="suffix"/>.</summary>
    public static void ReplaceWithBomb(string path, string entry, byte[] prefix, byte fill, long fillBytes, byte[] suffix)
    {
        var entries = Read(path);
        File.Delete(path);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, content) in entries)
        {
            using var stream = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
            if (name != entry)
            {
                stream.Write(content);
                continue;
            }

            stream.Write(prefix);
            var chunk = new byte[1 << 20];
            Array.Fill(chunk, fill);
            for (long done = 0; done < fillBytes; done += chunk.Length)
            {
                stream.Write(chunk, 0, (int)Math.Min(chunk.Length, fillBytes - done));
            }

            stream.Write(suffix);
        }
    }

    /// <summary>Flips a byte in the middle of an entry's compressed data: its content no longer matches its CRC-32.</summary>
    public static void FlipCompressedByte(string path, string entry)
    {
        var bytes = File.ReadAllBytes(path);
        var (local, compressedSize) = Locate(bytes, entry);
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(local + 26));
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(local + 28));
        int data = local + 30 + nameLength + extraLength;
        bytes[data + (int)(compressedSize / 2)] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Overwrites a 32-bit field of an entry's central-directory record (16: CRC-32, 20: compressed size, 24: uncompressed size) and, with <paramref name="localOffset"/>, of its local header too.</summary>
    public static void SetField(string path, string entry, int centralOffset, int? localOffset, uint value)
    {
        var bytes = File.ReadAllBytes(path);
        int central = CentralRecord(bytes, entry);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(central + centralOffset), value);
        if (localOffset is int offset)
        {
            int local = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(central + 42));
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(local + offset), value);
        }

        File.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// Writes <paramref name="target"/>: the entries of <paramref name="source"/>, then one entry of
    /// <paramref name="kernelBytes"/> zero bytes (about a thousandth of that on disk) that <paramref name="references"/>
    /// central-directory records all point at, so the zip inflates to references x kernelBytes (an overlapping-entry zip bomb).
    /// </summary>
    public static void WriteOverlappingBomb(string source, string target, long kernelBytes, int references)
    {
        var entries = Read(source);
        using var file = File.Create(target);
        using var writer = new BinaryWriter(file);
        var central = new List<(string Name, uint Crc, uint Compressed, uint Size, uint Offset)>();
        foreach (var (name, content) in entries)
        {
            central.Add(Local(writer, name, Deflate(w => w.Write(content)), Crc32.HashToUInt32(content), (uint)content.Length));
        }

        var kernelCrc = new Crc32();
        var kernel = Deflate(stream =>
        {
            var zeros = new byte[1 << 20];
            for (long done = 0; done < kernelBytes; done += zeros.Length)
            {
                var chunk = zeros.AsSpan(0, (int)Math.Min(zeros.Length, kernelBytes - done));
                stream.Write(chunk);
                kernelCrc.Append(chunk);
            }
        });
        var first = Local(writer, "padding-000", kernel, kernelCrc.GetCurrentHashAsUInt32(), (uint)kernelBytes);
        central.Add(first);
        for (int i = 1; i < references; i++)
        {
            central.Add(first with { Name = $"padding-{i:D3}" });
        }

        long directory = file.Position;
        foreach (var (name, crc, compressed, size, offset) in central)
        {
            byte[] nameBytes = Encoding.UTF8.GetBytes(name);
            writer.Write(0x02014b50u);
            writer.Write((ushort)20);
            writer.Write((ushort)20);
            writer.Write((ushort)0);
            writer.Write((ushort)8);
            writer.Write((ushort)0);
            writer.Write((ushort)0x21);
            writer.Write(crc);
            writer.Write(compressed);
            writer.Write(size);
            writer.Write((ushort)nameBytes.Length);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write(0u);
            writer.Write(offset);
            writer.Write(nameBytes);
        }

        long end = file.Position;
        writer.Write(0x06054b50u);
        writer.Write((ushort)0);
        writer.Write((ushort)0);
        writer.Write((ushort)central.Count);
        writer.Write((ushort)central.Count);
        writer.Write((uint)(end - directory));
        writer.Write((uint)directory);
        writer.Write((ushort)0);
    }

    private static (string Name, uint Crc, uint Compressed, uint Size, uint Offset) Local(BinaryWriter writer, string name, byte[] compressed, uint crc, uint size)
    {
        uint offset = (uint)writer.BaseStream.Position;
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        writer.Write(0x04034b50u);
        writer.Write((ushort)20);
        writer.Write((ushort)0);
        writer.Write((ushort)8);
        writer.Write((ushort)0);
        writer.Write((ushort)0x21);
        writer.Write(crc);
        writer.Write((uint)compressed.Length);
        writer.Write(size);
        writer.Write((ushort)nameBytes.Length);
        writer.Write((ushort)0);
        writer.Write(nameBytes);
        writer.Write(compressed);
        return (name, crc, (uint)compressed.Length, size, offset);
    }

    private static byte[] Deflate(Action<Stream> write)
    {
        using var buffer = new MemoryStream();
        using (var deflate = new DeflateStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            write(deflate);
        }

        return buffer.ToArray();
    }

    private static (int Local, uint CompressedSize) Locate(byte[] bytes, string entry)
    {
        int central = CentralRecord(bytes, entry);
        return ((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(central + 42)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(central + 20)));
    }

    private static int CentralRecord(byte[] bytes, string entry)
    {
        byte[] name = Encoding.UTF8.GetBytes(entry);
        for (int i = 0; i + 46 < bytes.Length; i++)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i)) == 0x02014b50u
                && BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i + 28)) == name.Length
                && bytes.AsSpan(i + 46, name.Length).SequenceEqual(name))
            {
                return i;
            }
        }

        throw new InvalidOperationException($"no central-directory record for '{entry}'");
    }
}

/// <summary>
/// One tiny trained run shared by the hostile cases (trained once per test process): x-resnet-8-2, 2 epochs on generated
/// CIFAR-10 (10 training, 5 test images), so its folder holds model.xnet, metrics.csv, training-curves.png and two
/// checkpoints; plus the model exported as ONNX and as an ML.NET zip, and a 32x32 BMP to classify. Cases copy what they damage.
/// </summary>
internal static class HostileFixture
{
    private static readonly Lazy<Trained> Instance = new(Train, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The paths of the fixture.</summary>
    public sealed record Trained(string Root, string Cifar, string Run, string Model, string MlNetZip, string Onnx, string Image)
    {
        public string Checkpoints => Path.Combine(Run, "checkpoints");

        public string OlderCheckpoint => Path.Combine(Checkpoints, "checkpoint-0001-000000.xckpt");

        public string NewestCheckpoint => Path.Combine(Checkpoints, "checkpoint-0002-000000.xckpt");
    }

    /// <summary>The fixture, trained on first use.</summary>
    public static Trained Get() => Instance.Value;

    /// <summary>The folder the fixture and every case's folder live in; removed when the test process ends.</summary>
    public static string TempRoot { get; } = Path.Combine(Path.GetTempPath(), "xnet-hostile-tests", $"{Environment.ProcessId}");

    /// <summary>A fresh folder for one case.</summary>
    public static string NewFolder(string name)
    {
        string path = Path.Combine(TempRoot, name.Length > 60 ? name[..60] : name, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }

    private static Trained Train()
    {
        string root = NewFolder("fixture");
        var (cifar, _) = GeneratedDatasets.WriteCifar10(root, recordsPerBatch: 2, testRecords: 5);
        string run = Path.Combine(root, "run");
        HostileCases.AssertSucceeded(HostileCases.Run("train", "--data", cifar, "--model", "x-resnet-8-2", "--epochs", "2",
            "--batch-size", "5", "--output-dir", run));
        string model = Path.Combine(run, "model.xnet");
        string zip = Path.Combine(root, "model.zip");
        string onnx = Path.Combine(root, "model.onnx");
        HostileCases.AssertSucceeded(HostileCases.Run("export", "--model", model, "--onnx", onnx, "--mlnet", zip));
        string image = HostileCases.WriteImage(Path.Combine(root, "image.bmp"));
        var trained = new Trained(root, cifar, run, model, zip, onnx, image);
        Assert.IsTrue(File.Exists(trained.OlderCheckpoint) && File.Exists(trained.NewestCheckpoint),
            string.Join(", ", Directory.GetFiles(trained.Checkpoints)));
        return trained;
    }
}

/// <summary>What every Hostile*Tests class shares: a fresh folder per case, removed afterwards.</summary>
public abstract class HostileTestBase
{
    private readonly List<string> folders = new();

    public TestContext TestContext { get; set; } = null!;

    /// <summary>A fresh empty folder for this case.</summary>
    protected string NewFolder()
    {
        string folder = HostileFixture.NewFolder(TestContext.TestName ?? "case");
        folders.Add(folder);
        return folder;
    }

    [TestCleanup]
    public void RemoveFolders()
    {
        foreach (string folder in folders.Where(Directory.Exists))
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
