namespace XNet.Architectures.Graphs;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fully specified generator, so expander graphs are identical on every
/// platform and .NET version, which <see cref="System.Random"/> does not promise.
/// </summary>
internal struct SplitMix64
{
    private ulong state;

    public SplitMix64(ulong seed) => state = seed;

    public ulong NextUInt64()
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [0, bound), without modulo bias (Lemire's multiply-and-reject).</summary>
    public int NextInt(int bound)
    {
        ulong threshold = (0UL - (ulong)bound) % (ulong)bound;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 product = (UInt128)r * (ulong)bound;
            if ((ulong)product >= threshold)
            {
                return (int)(ulong)(product >> 64);
            }
        }
    }

    /// <summary>A 64-bit seed from a model seed and a layer path (FNV-1a over the UTF-8 path, then mixed).</summary>
    public static ulong Derive(long modelSeed, string layerPath)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(layerPath))
        {
            hash = (hash ^ b) * 0x100000001B3UL;
        }

        var mixer = new SplitMix64(hash ^ (ulong)modelSeed);
        return mixer.NextUInt64();
    }
}
