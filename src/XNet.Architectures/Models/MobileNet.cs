using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>Configuration of MobileNet v1 (Howard et al. 2017).</summary>
/// <param name="WidthMultiplier">Width multiplier w in (0, 1] (more is allowed); channels are floor(w x c).</param>
/// <param name="Pointwise">Connectivity of the pointwise convs of blocks 2-13; block 1's stays dense (as the paper's reference code).</param>
/// <param name="ReferenceCodeLayout">
/// The layout of the paper's reference code instead of the canonical one: stem and block-1 input stay 32 wide and the last block ends at
/// 1024 channels whatever w is. The paper's README's FLOPs match the canonical layout (every block scaled).
/// </param>
public sealed record MobileNetConfig(double WidthMultiplier, Connectivity Pointwise, bool ReferenceCodeLayout = false)
{
    /// <summary>The 13 depthwise-separable blocks at w = 1: (input channels, output channels, stride).</summary>
    public static IReadOnlyList<(int In, int Out, int Stride)> Blocks { get; } = new[]
    {
        (32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
        (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 1024, 2), (1024, 1024, 1),
    };

    /// <summary>floor(w x channels), at least 1.</summary>
    public int Scale(int channels) => Math.Max(1, (int)Math.Floor(WidthMultiplier * channels));
}

/// <summary>
/// MobileNet v1: a 3x3/2 stem (BN, ReLU), 13 depthwise-separable blocks (depthwise 3x3, BN, ReLU6, pointwise 1x1, BN,
/// ReLU6; a Sequential of two <see cref="Conv2dNormActivation"/>, conv1 and conv2), global average pooling and a linear classifier. <c>x-mobilenet-w-g</c> makes the pointwise convs expanders of
/// density exactly 1/g, <c>g-mobilenet-w-g</c> grouped convs with g groups (no shuffle), as the paper's reference code's
/// <c>--grouptype expander|groups --sp g</c>; a <c>-seed</c> suffix selects the layout of the paper's reference code.
/// </summary>
public sealed class MobileNet : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?mobilenet-(?<width>\d+(?:\.\d+)?)(?:-(?<factor>\d+))?(?<seed>-seed)?$", RegexOptions.CultureInvariant);

    private readonly Conv2dNormActivation conv1;
    private readonly Sequential layers;
    private readonly Linear fc;

    /// <summary>Builds the network.</summary>
    public MobileNet(MobileNetConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(MobileNet))
    {
        if (!(config.WidthMultiplier > 0) || config.WidthMultiplier > 4)
        {
            throw new ArgumentException($"MobileNet width multiplier {config.WidthMultiplier} must be in (0, 4].");
        }

        ModelChecks.Classes("MobileNet", numClasses);
        input.Validate("MobileNet input");
        var blocks = MobileNetConfig.Blocks;
        int stem = config.ReferenceCodeLayout ? 32 : config.Scale(32);
        conv1 = new Conv2dNormActivation(Connectivity.Dense, "conv1", input.Channels, stem, 3, 2, 1, seed, Activation.ReLU);
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        int channels = stem;
        for (int i = 0; i < blocks.Count; i++)
        {
            bool last = i == blocks.Count - 1;
            int output = config.ReferenceCodeLayout && last ? blocks[i].Out : config.Scale(blocks[i].Out);
            var pointwise = i == 0 ? Connectivity.Dense : config.Pointwise;
            modules.Add(($"{i}", DepthwiseSeparable($"layers.{i}", channels, output, blocks[i].Stride, pointwise, seed)));
            channels = output;
        }

        layers = nn.Sequential(modules);
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants =>
        new[] { "1.0", "0.5" }.SelectMany(w => ConnectivityName.Twins($"mobilenet-{w}", 2, 4, 8, 16))
            .Concat(new[] { "mobilenet-0.5-seed", "x-mobilenet-0.5-4-seed", "s-mobilenet-0.5-4" });

    /// <summary>Parses <c>[x-|s-|g-]mobilenet-w[-g][-seed]</c>.</summary>
    public static bool TryParse(string name, out MobileNetConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) =>
            new MobileNetConfig(double.Parse(m.Groups["width"].Value, CultureInfo.InvariantCulture), c, m.Groups["seed"].Success));
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = layers.call(conv1.call(input));
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return fc.call(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.Module(graph, conv1, input, OnnxExport.Child(path, "conv1"));
        x = OnnxExport.GlobalPoolFlatten(graph, OnnxExport.Module(graph, layers, x, OnnxExport.Child(path, "layers")));
        return OnnxExport.Module(graph, fc, x, OnnxExport.Child(path, "fc"));
    }

    /// <summary>Depthwise 3x3 (stride s), BN, ReLU6, then pointwise 1x1 with the given connectivity, BN, ReLU6.</summary>
    private static Sequential DepthwiseSeparable(string path, int inputChannels, int outputChannels, int stride, Connectivity pointwise, long seed)
    {
        var depthwise = nn.Conv2d(inputChannels, inputChannels, 3, stride: stride, padding: 1, groups: inputChannels, bias: false);
        nn.init.kaiming_normal_(depthwise.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
        return nn.Sequential(
            ("conv1", new Conv2dNormActivation(depthwise, inputChannels, Activation.ReLU6)),
            ("conv2", new Conv2dNormActivation(pointwise, $"{path}.conv2", inputChannels, outputChannels, 1, 1, 0, seed, Activation.ReLU6)));
    }
}
