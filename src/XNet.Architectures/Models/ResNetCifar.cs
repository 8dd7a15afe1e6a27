using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>Configuration of a CIFAR-style ResNet (He et al. 2016, section 4.2).</summary>
/// <param name="Depth">Total depth 6n + 2 (20, 32, 44, 56, 110, ...).</param>
/// <param name="Connectivity">Connectivity of the residual-branch 3x3 convolutions; stem, shortcuts and classifier stay dense.</param>
/// <param name="WidthMultiplier">Scales every stage width (16, 32, 64), rounded: the paper's argument is that an X-Net
/// can afford wider layers than a dense net of the same cost: <c>x-resnet-20-8-w1.4</c> (70,653 parameters),
/// <c>x-resnet-20-4</c> (72,026) and <c>resnet-20-w0.5</c> (68,786) cost about the same at 3x32x32.</param>
public sealed record ResNetCifarConfig(int Depth, Connectivity Connectivity, double WidthMultiplier = 1)
{
    /// <summary>Stage widths of the CIFAR ResNet at width multiplier 1.</summary>
    public static IReadOnlyList<int> Widths { get; } = new[] { 16, 32, 64 };

    /// <summary>The stage widths at <see cref="WidthMultiplier"/>.</summary>
    public IReadOnlyList<int> StageWidths => Widths.Select(w => Math.Max(1, (int)Math.Round(w * WidthMultiplier))).ToArray();

    /// <summary>Basic blocks per stage, n = (depth - 2) / 6.</summary>
    public int BlocksPerStage => (Depth - 2) / 6;
}

/// <summary>
/// The CIFAR ResNet family: a 3x3 stem of 16 channels, three stages of n basic blocks (16, 32, 64 channels; strides
/// 1, 2, 2), global average pooling and a linear classifier. Module names follow torchvision's ResNet (conv1, layer1..3,
/// fc; blocks with conv1, conv2, downsample), each convolution with its batch norm one <see cref="Conv2dNormActivation"/>. Shortcuts that change shape are a 1x1 convolution
/// plus BatchNorm (option B of the paper). Any input size and channel count works (28x28x1 included).
/// </summary>
public sealed class ResNetCifar : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?resnet-(?<depth>\d+)(?:-(?<factor>\d+(?:\.\d+)?))?(?:-w(?<width>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private readonly Conv2dNormActivation conv1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    /// <summary>Builds the network.</summary>
    /// <param name="config">Depth and connectivity.</param>
    /// <param name="input">Input image shape.</param>
    /// <param name="numClasses">Number of classes.</param>
    /// <param name="seed">Model seed for expander graphs.</param>
    public ResNetCifar(ResNetCifarConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(ResNetCifar))
    {
        if (config.Depth < 8 || (config.Depth - 2) % 6 != 0)
        {
            throw new ArgumentException($"ResNet (CIFAR) depth {config.Depth} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...).");
        }

        if (!(config.WidthMultiplier > 0) || config.WidthMultiplier > 16)
        {
            throw new ArgumentException($"ResNet (CIFAR) width multiplier {config.WidthMultiplier} must be in (0, 16].");
        }

        ModelChecks.Classes("ResNet (CIFAR)", numClasses);
        input.Validate("ResNet (CIFAR) input");
        var widths = config.StageWidths;
        conv1 = new Conv2dNormActivation(Connectivity.Dense, "conv1", input.Channels, widths[0], 3, 1, 1, seed, Activation.ReLU);
        int channels = widths[0];
        int n = config.BlocksPerStage;
        layer1 = ResNetStages.Make("layer1", ref channels, widths[0], n, 1, bottleneck: false, config.Connectivity, seed);
        layer2 = ResNetStages.Make("layer2", ref channels, widths[1], n, 2, bottleneck: false, config.Connectivity, seed);
        layer3 = ResNetStages.Make("layer3", ref channels, widths[2], n, 2, bottleneck: false, config.Connectivity, seed);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants =>
        new[] { 20, 32, 44, 56, 110 }.SelectMany(depth => ConnectivityName.Twins($"resnet-{depth}", 2, 4))
            .Concat(new[] { "s-resnet-20-2", "s-resnet-20-4", "s-resnet-56-4" })
            .Concat(new[] { "resnet-20-w0.5", "x-resnet-20-8", "g-resnet-20-8", "x-resnet-20-8-w1.4" });

    /// <summary>
    /// Parses <c>resnet-D</c> (dense), <c>x-resnet-D-e</c> (expander, compression e), <c>s-resnet-D-e[-rN]</c> (structured
    /// expander, compression e, r = N or 2 permutations) and <c>g-resnet-D-g</c> (grouped, g groups), each with an optional
    /// width multiplier suffix <c>-wM</c> (<c>resnet-20-w0.5</c>, <c>x-resnet-20-8-w1.4</c>). Depths 18, 34, 50, 101 and 152
    /// name the ImageNet models (<see cref="ResNet"/>), not these.
    /// </summary>
    public static bool TryParse(string name, out ResNetCifarConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) =>
        {
            int depth = ConnectivityName.Int(m.Groups["depth"].Value);
            double width = m.Groups["width"].Success
                ? double.Parse(m.Groups["width"].Value, System.Globalization.CultureInfo.InvariantCulture)
                : 1;
            return ResNetConfig.Depths.Contains(depth) || !(width > 0) ? null : new ResNetCifarConfig(depth, c, width);
        });
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = layer3.call(layer2.call(layer1.call(conv1.call(input))));
        return fc.call(avgpool.call(x).flatten(1)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.Module(graph, conv1, input, OnnxExport.Child(path, "conv1"));
        x = OnnxExport.Module(graph, layer1, x, OnnxExport.Child(path, "layer1"));
        x = OnnxExport.Module(graph, layer2, x, OnnxExport.Child(path, "layer2"));
        x = OnnxExport.Module(graph, layer3, x, OnnxExport.Child(path, "layer3"));
        x = graph.Flatten(OnnxExport.Module(graph, avgpool, x, OnnxExport.Child(path, "avgpool")), 1);
        return OnnxExport.Module(graph, fc, x, OnnxExport.Child(path, "fc"));
    }
}
