using TorchSharp;
using XNet.Architectures.Models;
using static TorchSharp.torch;

namespace XNet.Architectures;

/// <summary>
/// Builds a network for an input shape, a class count and a model seed. The seed draws the expander graphs (with each
/// layer's path); the weights are initialised from TorchSharp's global generator, which <c>torch.manual_seed</c> seeds.
/// </summary>
public delegate nn.Module<Tensor, Tensor> ModelBuilder(ImageShape input, int numClasses, long seed);

/// <summary>A model family in the zoo: its canonical variant names and a parser from a paper-style name to a builder.</summary>
/// <param name="Name">Family name, for listings.</param>
/// <param name="Input">The input the family was designed for (CIFAR 3x32x32, ImageNet 3x224x224); costs are quoted at it.</param>
/// <param name="Classes">The class count of the family's reference dataset (10 or 1000).</param>
/// <param name="Variants">Canonical names of the registered variants.</param>
/// <param name="Parse">Returns a builder for a (lower-case) name of this family, or null when the name is not one.</param>
public sealed record ModelFamily(string Name, ImageShape Input, int Classes, IReadOnlyList<string> Variants,
    Func<string, ModelBuilder?> Parse);

/// <summary>Parses a paper-style name into a family's configuration record.</summary>
internal delegate bool ConfigParser<TConfig>(string name, out TConfig? config);

/// <summary>
/// The registry of named architectures: paper-style names (<c>resnet-20</c>, <c>x-resnet-20-4</c>,
/// <c>g-resnet-20-4</c>, <c>x-densenet-bc-40-24-2</c>, <c>x-vgg16</c>, <c>x-resnet-50-2</c>, <c>x-mobilenet-0.5-4</c>, ...)
/// map to builders. Names are case-insensitive; <c>x-</c> names an expander model with compression e, <c>g-</c> its
/// grouped-convolution twin with g groups, no prefix the dense model.
/// </summary>
public static class ModelZoo
{
    private static readonly System.Text.RegularExpressions.Regex TwinPattern = new(
        @"^(?<prefix>x-|s-|g-)?(?<body>.*?)(?:-\d+(?:\.\d+)?)?(?:-dt)?(?<seed>-seed)?(?<width>-w\d+(?:\.\d+)?)?(?:-r\d+)?$",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static readonly ImageShape Cifar = new(3, 32, 32);
    private static readonly ImageShape ImageNet = new(3, 224, 224);

    private static readonly ModelFamily[] Families =
    {
        Family<ResNetConfig>("ResNet (CIFAR)", Cifar, 10, ResNet.CifarVariants, ResNet.TryParseCifar,
            (c, input, classes, seed) => new ResNet(c, input, classes, seed)),
        Family<DenseNetCifarConfig>("DenseNet-BC (CIFAR)", Cifar, 10, DenseNet.CifarVariants, DenseNet.TryParseCifar,
            (c, input, classes, seed) => new DenseNet(c, input, classes, seed)),
        Family<VggCifarConfig>("VGG16-BN (CIFAR)", Cifar, 10, VggCifar.Variants, VggCifar.TryParse,
            (c, input, classes, seed) => new VggCifar(c, input, classes, seed)),
        Family<ResNetConfig>("ResNet (ImageNet)", ImageNet, 1000, ResNet.Variants, ResNet.TryParse,
            (c, input, classes, seed) => new ResNet(c, input, classes, seed)),
        Family<DenseNetConfig>("DenseNet (ImageNet)", ImageNet, 1000, DenseNet.Variants, DenseNet.TryParse,
            (c, input, classes, seed) => new DenseNet(c, input, classes, seed)),
        Family<MobileNetConfig>("MobileNet v1 (ImageNet)", ImageNet, 1000, MobileNet.Variants, MobileNet.TryParse,
            (c, input, classes, seed) => new MobileNet(c, input, classes, seed)),
    };

    /// <summary>The registered families.</summary>
    public static IReadOnlyList<ModelFamily> ModelFamilies => Families;

    /// <summary>Every registered variant name.</summary>
    public static IReadOnlyList<string> Names { get; } = Families.SelectMany(f => f.Variants).ToArray();

    /// <summary>The most classes a model may have (ImageNet-21k has 21,841), checked before anything of that size is built.</summary>
    public const int MaxClasses = 100_000;

    /// <summary>Whether <paramref name="name"/> names a buildable architecture.</summary>
    public static bool IsKnown(string name) => Resolve(name) is not null;

    /// <summary>Throws unless <paramref name="name"/> names a buildable architecture.</summary>
    /// <param name="name">The name.</param>
    /// <param name="parameterName">The parameter or option the error names (default: <c>name</c>).</param>
    /// <exception cref="ArgumentException">When the name is unknown; the message lists close matches.</exception>
    public static void EnsureKnown(string name, string? parameterName = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Resolve(name) is null)
        {
            throw new ArgumentException(UnknownNameMessage(name), parameterName ?? nameof(name));
        }
    }

    /// <summary>
    /// Throws unless <paramref name="name"/> builds for <paramref name="input"/> and <paramref name="numClasses"/>: a name the
    /// zoo parses may still not build (a CIFAR ResNet depth other than 6n + 2, an input below the family's smallest). Builds
    /// the network once and disposes it.
    /// </summary>
    /// <param name="name">The name.</param>
    /// <param name="input">The input shape.</param>
    /// <param name="numClasses">The class count.</param>
    /// <param name="parameterName">The option the error names, as "Option {parameterName} = '{name}': ...".</param>
    /// <exception cref="ArgumentException">When the name is unknown or does not build.</exception>
    public static void EnsureBuildable(string name, ImageShape input, int numClasses, string parameterName)
    {
        EnsureKnown(name, parameterName);
        try
        {
            using var scope = NewDisposeScope();
            lock (GlobalGenerator.Gate) // its weights draw from the global generator, which another thread may have seeded
            {
                using var network = Create(name, input, numClasses, seed: 0);
            }
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"Option {parameterName} = '{name}': {ex.Message}", parameterName, ex);
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

    /// <summary>The family a name belongs to (for its reference input and class count).</summary>
    /// <exception cref="ArgumentException">When the name is unknown.</exception>
    public static ModelFamily FamilyOf(string name)
    {
        EnsureKnown(name);
        string key = Key(name);
        return Families.First(f => f.Parse(key) is not null);
    }

    /// <summary>
    /// The dense model an X- or G-model compresses: the name without its <c>x-</c>/<c>g-</c> prefix, its factor and a
    /// <c>-dt</c> suffix, keeping a width suffix (<c>x-densenet-bc-40-24-2-dt</c> -> <c>densenet-bc-40-24</c>,
    /// <c>g-mobilenet-0.5-4-seed</c> -> <c>mobilenet-0.5-seed</c>, <c>x-resnet-20-8-w2</c> -> <c>resnet-20-w2</c>). A dense
    /// name is its own twin.
    /// </summary>
    /// <exception cref="ArgumentException">When the name is unknown.</exception>
    public static string DenseTwinOf(string name)
    {
        EnsureKnown(name);
        var match = TwinPattern.Match(Key(name));
        string twin = match.Groups["prefix"].Success
            ? match.Groups["body"].Value + match.Groups["seed"].Value + match.Groups["width"].Value
            : Key(name);
        EnsureKnown(twin);
        return twin;
    }

    private static ModelBuilder? Resolve(string name)
    {
        string key = Key(name);
        return Families.Select(f => f.Parse(key)).FirstOrDefault(b => b is not null);
    }

    private static string Key(string name) => name.Trim().ToLowerInvariant();

    private static ModelFamily Family<TConfig>(string name, ImageShape input, int classes, IEnumerable<string> variants,
        ConfigParser<TConfig> parse, Func<TConfig, ImageShape, int, long, nn.Module<Tensor, Tensor>> build)
        where TConfig : class =>
        new(name, input, classes, variants.ToArray(),
            key => parse(key, out var config) ? (i, c, s) => build(config!, i, c, s) : null);

    private static string UnknownNameMessage(string name)
    {
        var close = Spelling.Closest(Key(name), Names, 3);
        return $"Unknown architecture '{name}'. Did you mean: {string.Join(", ", close)}? " +
               "Run 'xnet models' for the full list.";
    }
}
