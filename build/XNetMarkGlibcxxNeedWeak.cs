// MSBuild inline task (RoslynCodeTaskFactory), used by build/XNet.LibTorchSharpFix.targets here and shipped beside it in the
// XNet.Architectures package (buildTransitive/): marks libLibTorchSharp.so's version need GLIBCXX_3.4.32 weak.
//
// ELF64 little-endian layout used here (System V gABI + GNU symbol versioning):
//   ELF header: e_shoff @0x28 (u64), e_shentsize @0x3A (u16), e_shnum @0x3C (u16)
//   section header: sh_type @0x04 (u32), sh_offset @0x18 (u64), sh_size @0x20 (u64), sh_link @0x28 (u32), sh_info @0x2C (u32)
//   SHT_GNU_verneed = 0x6ffffffe; Elf64_Verneed: vn_cnt @2 (u16), vn_aux @8 (u32), vn_next @12 (u32)
//   Elf64_Vernaux: vna_flags @4 (u16), vna_name @8 (u32, offset into the linked string table), vna_next @12 (u32)
//   VER_FLG_WEAK = 0x2: glibc's loader then tolerates a libstdc++ without that version.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class XNetMarkGlibcxxNeedWeak : Task
{
    private const string LibraryName = "libLibTorchSharp.so";
    private const string VersionName = "GLIBCXX_3.4.32";
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

    [Required]
    public string[] Directories { get; set; } = Array.Empty<string>();

    [Output]
    public string[] Patched { get; set; } = Array.Empty<string>();

    public override bool Execute()
    {
        if (SystemLibStdCxxHas(VersionName))
        {
            Log.LogMessage(MessageImportance.Low, "System libstdc++ provides " + VersionName + "; libLibTorchSharp.so left as shipped.");
            return true;
        }

        var patched = new List<string>();
        foreach (string directory in Directories)
        {
            foreach (string candidate in new[]
                     {
                         Path.Combine(directory, LibraryName),
                         Path.Combine(directory, "runtimes", "linux-x64", "native", LibraryName),
                     })
            {
                if (!File.Exists(candidate))
                {
                    continue;
                }

                try
                {
                    if (PatchFile(candidate))
                    {
                        patched.Add(candidate);
                        Log.LogMessage(MessageImportance.Normal, "Marked " + VersionName + " weak in " + candidate);
                    }
                }
                catch (Exception ex) when (ex is IOException || ex is InvalidDataException || ex is UnauthorizedAccessException)
                {
                    Log.LogError("Could not mark " + VersionName + " weak in '" + candidate + "': " + ex.Message);
                    return false;
                }
            }
        }

        Patched = patched.ToArray();
        return true;
    }

    private static bool SystemLibStdCxxHas(string version)
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        foreach (string path in candidates)
        {
            if (File.Exists(path))
            {
                return IndexOf(File.ReadAllBytes(path), Encoding.ASCII.GetBytes(version + "\0")) >= 0;
            }
        }

        return false;
    }

    /// <summary>Returns true when the file was changed; false when it was already weak or has no such need.</summary>
    private static bool PatchFile(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
        {
            throw new InvalidDataException("not an ELF file");
        }

        if (elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException("expected a 64-bit little-endian ELF file");
        }

        long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        bool changed = false;
        for (int s = 0; s < shnum; s++)
        {
            long sh = shoff + (long)s * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 0x04) != ShtGnuVerneed)
            {
                continue;
            }

            long verneed = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
            uint entries = BitConverter.ToUInt32(elf, (int)sh + 0x2C);
            long strtabHeader = shoff + (long)BitConverter.ToUInt32(elf, (int)sh + 0x28) * shentsize;
            long strtab = (long)BitConverter.ToUInt64(elf, (int)strtabHeader + 0x18);

            long need = verneed;
            for (uint n = 0; n < entries; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, (int)need + 2);
                long aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    long name = strtab + BitConverter.ToUInt32(elf, (int)aux + 8);
                    if (ReadCString(elf, name) == VersionName)
                    {
                        ushort flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                        if ((flags & VerFlagWeak) == 0)
                        {
                            BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(elf, (int)aux + 4);
                            changed = true;
                        }
                    }

                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }

                need += BitConverter.ToUInt32(elf, (int)need + 12);
            }
        }

        if (changed)
        {
            // Write beside and rename: the output copy may be a hard link into the NuGet cache, which must stay pristine,
            // and a half-written library must never be left behind.
            string temp = path + ".xnet-tmp";
            File.WriteAllBytes(temp, elf);
            File.Replace(temp, path, null);
        }

        return changed;
    }

    private static string ReadCString(byte[] data, long offset)
    {
        int end = (int)offset;
        while (end < data.Length && data[end] != 0)
        {
            end++;
        }

        return Encoding.ASCII.GetString(data, (int)offset, end - (int)offset);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j])
            {
                j++;
            }

            if (j == needle.Length)
            {
                return i;
            }
        }

        return -1;
    }
}
