using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>Configuration of VGG16-BN for CIFAR: the connectivity of each of its 13 convolutions and of its hidden linear layer.</summary>
/// <param name="Convolutions">One connectivity per 3x3 convolution (13); dense ones carry a bias, compressed ones do not (as the paper's reference code).</param>
/// <param name="Hidden">Connectivity of the 512 -> 512 hidden linear layer; the output layer is dense.</param>
public sealed record VggCifarConfig(IReadOnlyList<Connectivity> Convolutions, Connectivity Hidden)
{
    /// <summary>VGG configuration "D": output channels per convolution, 0 for a 2x2 max pooling.</summary>
    public static IReadOnlyList<int> Layout { get; } = new[] { 64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0 };

    /// <summary>
    /// The paper's reference code's X-VGG16 compression per convolution (1 = dense) and for the hidden linear layer: its per-layer degree
    /// table (64 for three layers, 16 for nine, 128 for the linear layer) as densities, 1/2 for conv 4, 1/16 for convs
    /// 5-7, 1/32 for convs 8-13, 1/4 for the linear layer (the paper's reference code).
    /// </summary>
    public static IReadOnlyList<int> PaperCompression { get; } = new[] { 1, 1, 1, 2, 16, 16, 16, 32, 32, 32, 32, 32, 32 };

    /// <summary>The paper's reference code's compression of the hidden linear layer.</summary>
    public const int PaperHiddenCompression = 4;

    /// <summary>Dense VGG16-BN.</summary>
    public static VggCifarConfig Dense { get; } = new(Enumerable.Repeat(Connectivity.Dense, 13).ToArray(), Connectivity.Dense);

    /// <summary>The paper's reference code's per-layer table with each compressed layer built by <paramref name="compressed"/> (expander or grouped).</summary>
    public static VggCifarConfig FromPaperTable(Func<int, Connectivity> compressed) =>
        new(PaperCompression.Select(e => e == 1 ? Connectivity.Dense : compressed(e)).ToArray(), compressed(PaperHiddenCompression));
}

/// <summary>
/// VGG16 with BatchNorm for 32x32 inputs (the paper's reference code's <c>vgg16cifar_bn</c>): 13 3x3 convolutions with BN and ReLU in
/// five stages with max pooling, then Linear 512 -> 512, ReLU, Linear 512 -> classes (any class count; the paper's reference code
/// hard-wired 10). Module names follow torchvision (features.N, classifier.N), each convolution with its BN and ReLU one
/// <see cref="Conv2dNormActivation"/> (features.0.0, features.0.1) at the index of its convolution. <c>x-vgg16</c> uses the paper's reference code's
/// per-layer expander table, <c>g-vgg16</c> grouped convolutions (and a block-diagonal linear layer) at the same densities.
/// </summary>
public sealed class VggCifar : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(@"^(?<kind>x-|s-|g-)?vgg16$", RegexOptions.CultureInvariant);

    private readonly Sequential features;
    private readonly Sequential classifier;

    /// <summary>Builds the network.</summary>
    public VggCifar(VggCifarConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(VggCifar))
    {
        if (config.Convolutions.Count != 13)
        {
            throw new ArgumentException($"VGG16 (CIFAR) needs 13 convolution connectivities, got {config.Convolutions.Count}.");
        }

        ModelChecks.Classes("VGG16 (CIFAR)", numClasses);
        ModelChecks.MinimumSize("VGG16 (CIFAR)", input, 32);
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        // Numbered as torchvision's flat features (a convolution, its BN and its ReLU take three indices), so the units'
        // paths, which seed their expander graphs, stay features.0, features.3, features.7, ...
        int channels = input.Channels, conv = 0, index = 0;
        foreach (int width in VggCifarConfig.Layout)
        {
            string name = index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (width == 0)
            {
                layers.Add((name, nn.MaxPool2d(2, 2)));
                index++;
                continue;
            }

            var convolution = Convolution($"features.{name}", channels, width, config.Convolutions[conv++], seed);
            layers.Add((name, new Conv2dNormActivation(convolution, width, Activation.ReLU)));
            index += 3;
            channels = width;
        }

        features = nn.Sequential(layers);
        classifier = nn.Sequential(
            ("0", config.Hidden.Linear("classifier.0", channels, 512, seed)),
            ("1", nn.ReLU()),
            ("2", nn.Linear(512, numClasses)));
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants => new[] { "vgg16", "x-vgg16", "g-vgg16" };

    /// <summary>
    /// Parses <c>vgg16</c> (dense), <c>x-vgg16</c> (the paper's reference code's expander table), <c>s-vgg16</c> (the same table with structured
    /// expanders, r = 2) and <c>g-vgg16</c> (grouped twin).
    /// </summary>
    public static bool TryParse(string name, out VggCifarConfig? config)
    {
        var match = NamePattern.Match(name);
        config = !match.Success ? null : match.Groups["kind"].Value switch
        {
            "x-" => VggCifarConfig.FromPaperTable(e => Connectivity.Expander(e)),
            "s-" => VggCifarConfig.FromPaperTable(e => Connectivity.StructuredExpander(e)),
            "g-" => VggCifarConfig.FromPaperTable(Connectivity.Grouped),
            _ => VggCifarConfig.Dense,
        };
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = nn.functional.adaptive_avg_pool2d(features.call(input), 1).flatten(1);
        return classifier.call(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.GlobalPoolFlatten(graph, OnnxExport.Module(graph, features, input, OnnxExport.Child(path, "features")));
        return OnnxExport.Module(graph, classifier, x, OnnxExport.Child(path, "classifier"));
    }

    /// <summary>A dense 3x3 conv with bias, initialised N(0, sqrt(2 / (9 C_out))) with zero bias (the paper's reference code), or a compressed one.</summary>
    private static nn.Module<Tensor, Tensor> Convolution(string path, int inputChannels, int outputChannels,
        Connectivity connectivity, long seed)
    {
        if (connectivity is not DenseConnectivity)
        {
            return connectivity.Conv2d(path, inputChannels, outputChannels, 3, 1, 1, seed);
        }

        var conv = nn.Conv2d(inputChannels, outputChannels, 3, padding: 1, bias: true);
        nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
        nn.init.zeros_(conv.bias);
        return conv;
    }
}
