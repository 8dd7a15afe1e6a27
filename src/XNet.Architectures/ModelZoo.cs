using TorchSharp;
using XNet.Architectures.Models;
using static TorchSharp.torch;

namespace XNet.Architectures;

/// <summary>Builds a network for an input shape, a class count and a model seed.</summary>
public delegate nn.Module<Tensor, Tensor> ModelBuilder(ImageShape input, int numClasses, long seed);

/// <summary>A model family in the zoo: its canonical variant names and a parser from a paper-style name to a builder.</summary>
/// <param name="Name">Family name, for listings.</param>
/// <param name="Variants">Canonical names of the registered variants.</param>
/// <param name="Parse">Returns a builder for a (lower-case) name of this family, or null when the name is not one.</param>
public sealed record ModelFamily(string Name, IReadOnlyList<string> Variants, Func<string, ModelBuilder?> Parse);

/// <summary>
/// The registry of named architectures: paper-style names (<c>resnet-20</c>, <c>x-resnet-20-4</c>,
/// <c>g-resnet-20-4</c>) map to builders. Names are case-insensitive.
/// </summary>
public static class ModelZoo
{
    private static readonly ModelFamily[] Families =
    {
        new("ResNet (CIFAR)", ResNetCifar.Variants.ToArray(),
            name => ResNetCifar.TryParse(name, out var config)
                ? (input, classes, seed) => new ResNetCifar(config!, input, classes, seed)
                : null),
    };

    /// <summary>The registered families.</summary>
    public static IReadOnlyList<ModelFamily> ModelFamilies => Families;

    /// <summary>Every registered variant name.</summary>
    public static IReadOnlyList<string> Names { get; } = Families.SelectMany(f => f.Variants).ToArray();

    /// <summary>Whether <paramref name="name"/> names a buildable architecture.</summary>
    public static bool IsKnown(string name) => Resolve(name) is not null;

    /// <summary>Throws unless <paramref name="name"/> names a buildable architecture.</summary>
    /// <exception cref="ArgumentException">When the name is unknown; the message lists close matches.</exception>
    public static void EnsureKnown(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Resolve(name) is null)
        {
            throw new ArgumentException(UnknownNameMessage(name), nameof(name));
        }
    }

    /// <summary>Builds the named network; expander graphs are drawn from (<paramref name="seed"/>, layer path).</summary>
    /// <exception cref="ArgumentException">When the name is unknown (the message lists close matches) or the configuration is invalid.</exception>
    public static nn.Module<Tensor, Tensor> Create(string name, ImageShape input, int numClasses, long seed)
    {
        ArgumentNullException.ThrowIfNull(name);
        EnsureKnown(name);
        TorchRuntime.EnsureLoaded();
        return Resolve(name)!(input, numClasses, seed);
    }

    private static ModelBuilder? Resolve(string name)
    {
        string key = name.Trim().ToLowerInvariant();
        return Families.Select(f => f.Parse(key)).FirstOrDefault(b => b is not null);
    }

    private static string UnknownNameMessage(string name)
    {
        string key = name.Trim().ToLowerInvariant();
        var close = Names.OrderBy(n => EditDistance(key, n)).ThenBy(n => n, StringComparer.Ordinal).Take(3);
        return $"Unknown architecture '{name}'. Did you mean: {string.Join(", ", close)}? " +
               "Run 'xnet models' for the full list.";
    }

    private static int EditDistance(string a, string b)
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
