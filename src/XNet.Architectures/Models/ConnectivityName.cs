using System.Globalization;
using System.Text.RegularExpressions;
using XNet.Architectures.Layers;

namespace XNet.Architectures.Models;

/// <summary>
/// The naming rule every family shares: no prefix is the dense model, <c>x-</c> with a trailing compression e is the
/// expander model (the paper's random graphs), <c>s-</c> with a trailing compression e the structured expander model
/// (r = 2 permutations, or r = N with a final <c>-rN</c> suffix), <c>g-</c> with a trailing group count g the
/// grouped-convolution twin.
/// </summary>
internal static class ConnectivityName
{
    private static readonly Regex CopiesSuffix = new(@"^(?<stem>s-.*)-r(?<copies>\d+)$", RegexOptions.CultureInvariant);

    /// <summary>The connectivity a name's prefix and factor denote, or null when they do not fit together.</summary>
    /// <param name="prefix">"", "x-", "s-" or "g-".</param>
    /// <param name="factor">The trailing factor ("" when absent).</param>
    /// <param name="copies">The structured family's r (from a <c>-rN</c> suffix; only <c>s-</c> names carry one).</param>
    public static Connectivity? Parse(string prefix, string factor, int copies = StructuredExpanderConnectivity.DefaultCopies) =>
        (prefix, factor.Length > 0) switch
        {
            ("", false) => Connectivity.Dense,
            ("x-", true) when double.TryParse(factor, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double e) =>
                Connectivity.Expander(e),
            ("s-", true) when copies >= 1 &&
                              double.TryParse(factor, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double e) =>
                Connectivity.StructuredExpander(e, copies),
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
        int copies = StructuredExpanderConnectivity.DefaultCopies;
        var suffix = CopiesSuffix.Match(name);
        if (suffix.Success)
        {
            if (!int.TryParse(suffix.Groups["copies"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out copies))
            {
                return null;
            }

            name = suffix.Groups["stem"].Value;
        }

        var match = pattern.Match(name);
        var connectivity = match.Success ? Parse(match.Groups["kind"].Value, match.Groups["factor"].Value, copies) : null;
        return connectivity is null ? null : build(match, connectivity);
    }

    /// <summary>The name prefix of a connectivity: "", "x-", "s-" or "g-".</summary>
    public static string Prefix(Connectivity connectivity) => connectivity switch
    {
        ExpanderConnectivity => "x-",
        StructuredExpanderConnectivity => "s-",
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
