using System.Globalization;
using System.Text.RegularExpressions;
using XNet.Architectures.Layers;

namespace XNet.Architectures.Models;

/// <summary>
/// The naming rule every family shares: no prefix is the dense model, <c>x-</c> with a trailing compression e is the
/// expander model, <c>g-</c> with a trailing group count g is the grouped-convolution twin.
/// </summary>
internal static class ConnectivityName
{
    /// <summary>The connectivity a name's prefix and factor denote, or null when they do not fit together.</summary>
    /// <param name="prefix">"", "x-" or "g-".</param>
    /// <param name="factor">The trailing factor ("" when absent).</param>
    public static Connectivity? Parse(string prefix, string factor) => (prefix, factor.Length > 0) switch
    {
        ("", false) => Connectivity.Dense,
        ("x-", true) when double.TryParse(factor, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double e) =>
            Connectivity.Expander(e),
        ("g-", true) when int.TryParse(factor, NumberStyles.None, CultureInfo.InvariantCulture, out int groups) =>
            Connectivity.Grouped(groups),
        _ => null,
    };

    /// <summary>
    /// Matches <paramref name="name"/> against a family's pattern (with <c>kind</c> and <c>factor</c> groups) and builds its
    /// configuration; null when the name is not the family's or its prefix and factor do not fit together.
    /// </summary>
    public static TConfig? Match<TConfig>(Regex pattern, string name, Func<Match, Connectivity, TConfig?> build)
        where TConfig : class
    {
        var match = pattern.Match(name);
        var connectivity = match.Success ? Parse(match.Groups["kind"].Value, match.Groups["factor"].Value) : null;
        return connectivity is null ? null : build(match, connectivity);
    }

    /// <summary>The name prefix of a connectivity: "", "x-" or "g-".</summary>
    public static string Prefix(Connectivity connectivity) => connectivity switch
    {
        ExpanderConnectivity => "x-",
        GroupedConnectivity => "g-",
        _ => "",
    };

    /// <summary>The variants of one dense name: itself, then the x- and g- twins at each factor.</summary>
    public static IEnumerable<string> Twins(string denseName, params int[] factors)
    {
        yield return denseName;
        foreach (int factor in factors)
        {
            yield return $"x-{denseName}-{factor}";
            yield return $"g-{denseName}-{factor}";
        }
    }

    /// <summary>Parses an integer captured by a name pattern.</summary>
    public static int Int(string digits) => int.Parse(digits, CultureInfo.InvariantCulture);
}
