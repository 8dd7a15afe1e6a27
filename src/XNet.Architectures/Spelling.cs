namespace XNet.Architectures;

/// <summary>The names closest to a misspelt one, for the "did you mean" of an error message.</summary>
internal static class Spelling
{
    /// <summary>
    /// Up to <paramref name="count"/> of <paramref name="names"/> nearest to <paramref name="name"/> in edit distance
    /// (case ignored), nearest first, ties in ordinal order; with <paramref name="within"/>, only those at most that far.
    /// </summary>
    public static IEnumerable<string> Closest(string name, IEnumerable<string> names, int count, int within = int.MaxValue)
    {
        string key = name.ToLowerInvariant();
        return names.Select(n => (Name: n, Distance: Distance(key, n.ToLowerInvariant())))
            .Where(n => n.Distance <= within)
            .OrderBy(n => n.Distance).ThenBy(n => n.Name, StringComparer.Ordinal)
            .Take(count)
            .Select(n => n.Name);
    }

    /// <summary>Levenshtein distance: insertions, deletions and substitutions that turn one string into the other.</summary>
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
