using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>Configuration of an ImageNet ResNet (He et al. 2016, torchvision's v1.5 layout).</summary>
/// <param name="Depth">18, 34, 50, 101 or 152.</param>
/// <param name="Connectivity">Connectivity of every residual-branch convolution; stem, downsample projections and classifier stay dense.</param>
public sealed record ResNetConfig(int Depth, Connectivity Connectivity)
{
    private static readonly Dictionary<int, (int[] Blocks, bool Bottleneck)> Layouts = new()
    {
        [18] = (new[] { 2, 2, 2, 2 }, false),
        [34] = (new[] { 3, 4, 6, 3 }, false),
        [50] = (new[] { 3, 4, 6, 3 }, true),
        [101] = (new[] { 3, 4, 23, 3 }, true),
        [152] = (new[] { 3, 8, 36, 3 }, true),
    };

    /// <summary>The depths with a torchvision layout.</summary>
    public static IReadOnlyCollection<int> Depths => Layouts.Keys;

    /// <summary>Blocks per stage.</summary>
    public IReadOnlyList<int> Blocks => Layout.Blocks;

    /// <summary>Whether the blocks are bottlenecks (1x1, 3x3, 1x1 with expansion 4) rather than basic blocks.</summary>
    public bool Bottleneck => Layout.Bottleneck;

    private (int[] Blocks, bool Bottleneck) Layout => Layouts.TryGetValue(Depth, out var layout)
        ? layout
        : throw new ArgumentException($"ResNet depth {Depth} must be one of {string.Join(", ", Layouts.Keys)}.");
}

/// <summary>
/// The ImageNet ResNet family (ResNet-18/34/50/101/152): a 7x7/2 stem with max pooling, four stages of basic or
/// bottleneck blocks (64, 128, 256, 512 wide; stride on the 3x3 conv), global average pooling and a linear classifier.
/// Module names follow torchvision (conv1, layer1..4, fc; a convolution and its batch norm are one
/// <see cref="Conv2dNormActivation"/>, conv1.0 and conv1.1), so the dense models have torchvision's exact parameter counts. X-ResNets replace every residual-branch convolution (the paper's reference code).
/// </summary>
public sealed class ResNet : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?resnet-(?<depth>18|34|50|101|152)(?:-(?<factor>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private readonly Conv2dNormActivation conv1;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    /// <summary>Builds the network.</summary>
    public ResNet(ResNetConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(ResNet))
    {
        ModelChecks.Classes("ResNet", numClasses);
        ModelChecks.MinimumSize("ResNet", input, 32);
        conv1 = new Conv2dNormActivation(Connectivity.Dense, "conv1", input.Channels, 64, 7, 2, 3, seed, Activation.ReLU);
        maxpool = nn.MaxPool2d(3, 2, 1);
        int channels = 64;
        var blocks = config.Blocks;
        layer1 = ResNetStages.Make("layer1", ref channels, 64, blocks[0], 1, config.Bottleneck, config.Connectivity, seed);
        layer2 = ResNetStages.Make("layer2", ref channels, 128, blocks[1], 2, config.Bottleneck, config.Connectivity, seed);
        layer3 = ResNetStages.Make("layer3", ref channels, 256, blocks[2], 2, config.Bottleneck, config.Connectivity, seed);
        layer4 = ResNetStages.Make("layer4", ref channels, 512, blocks[3], 2, config.Bottleneck, config.Connectivity, seed);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants =>
        ResNetConfig.Depths.SelectMany(depth => ConnectivityName.Twins($"resnet-{depth}", 2, 4)).Append("s-resnet-18-2");

    /// <summary>Parses <c>resnet-D</c>, <c>x-resnet-D-e</c> and <c>g-resnet-D-g</c> for D in 18, 34, 50, 101, 152.</summary>
    public static bool TryParse(string name, out ResNetConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) => new ResNetConfig(ConnectivityName.Int(m.Groups["depth"].Value), c));
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = maxpool.call(conv1.call(input));
        x = layer4.call(layer3.call(layer2.call(layer1.call(x))));
        return fc.call(avgpool.call(x).flatten(1)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.Module(graph, conv1, input, OnnxExport.Child(path, "conv1"));
        x = OnnxExport.Module(graph, maxpool, x, OnnxExport.Child(path, "maxpool"));
        x = OnnxExport.Module(graph, layer1, x, OnnxExport.Child(path, "layer1"));
        x = OnnxExport.Module(graph, layer2, x, OnnxExport.Child(path, "layer2"));
        x = OnnxExport.Module(graph, layer3, x, OnnxExport.Child(path, "layer3"));
        x = OnnxExport.Module(graph, layer4, x, OnnxExport.Child(path, "layer4"));
        x = graph.Flatten(OnnxExport.Module(graph, avgpool, x, OnnxExport.Child(path, "avgpool")), 1);
        return OnnxExport.Module(graph, fc, x, OnnxExport.Child(path, "fc"));
    }
}

/// <summary>Builds the stages of both ResNet families from basic or bottleneck blocks.</summary>
internal static class ResNetStages
{
    /// <summary>The bottleneck's expansion: its last 1x1 convolution widens the block to 4 x its width.</summary>
    public const int Expansion = 4;

    /// <summary>A stage of <paramref name="blocks"/> blocks; the first one strides and projects the shortcut when needed.</summary>
    /// <param name="path">The stage's module path (layer1, ...).</param>
    /// <param name="channels">Channels entering the stage; updated to the channels leaving it.</param>
    /// <param name="width">The blocks' width (the bottleneck's inner width).</param>
    /// <param name="blocks">Number of blocks.</param>
    /// <param name="stride">Stride of the first block.</param>
    /// <param name="bottleneck">Bottleneck (expansion 4) or basic blocks.</param>
    /// <param name="connectivity">Connectivity of the residual-branch convolutions.</param>
    /// <param name="seed">The model seed.</param>
    public static Sequential Make(string path, ref int channels, int width, int blocks, int stride, bool bottleneck,
        Connectivity connectivity, long seed)
    {
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int i = 0; i < blocks; i++)
        {
            int blockStride = i == 0 ? stride : 1;
            // (C_in, C_out, kernel, stride) of each convolution; the stride sits on the 3x3 (torchvision's v1.5).
            var convolutions = bottleneck
                ? new[] { (channels, width, 1, 1), (width, width, 3, blockStride), (width, width * Expansion, 1, 1) }
                : new[] { (channels, width, 3, blockStride), (width, width, 3, 1) };
            modules.Add(($"{i}", new ResidualBlock($"{path}.{i}", convolutions, connectivity, seed)));
            channels = convolutions[^1].Item2;
        }

        return nn.Sequential(modules);
    }
}

/// <summary>
/// A residual block (torchvision's BasicBlock: two 3x3 convolutions; Bottleneck: 1x1 reduce, 3x3, 1x1 expand), each
/// convolution with BatchNorm and ReLU except the last, whose ReLU follows the sum with the identity or projection shortcut.
/// </summary>
internal sealed class ResidualBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly List<Conv2dNormActivation> convolutions = new();
    private readonly Sequential? downsample;

    /// <param name="path">The block's module path; its convolutions are conv1, conv2, ... (torchvision's names).</param>
    /// <param name="shapes">(C_in, C_out, kernel, stride) of each convolution of the residual branch, in order.</param>
    /// <param name="connectivity">Connectivity of the residual-branch convolutions.</param>
    /// <param name="seed">The model seed.</param>
    public ResidualBlock(string path, IReadOnlyList<(int In, int Out, int Kernel, int Stride)> shapes, Connectivity connectivity, long seed)
        : base(nameof(ResidualBlock))
    {
        for (int i = 0; i < shapes.Count; i++)
        {
            var (inputs, outputs, kernel, stride) = shapes[i];
            var activation = i < shapes.Count - 1 ? Activation.ReLU : Activation.None;
            var conv = new Conv2dNormActivation(connectivity, $"{path}.conv{i + 1}", inputs, outputs, kernel, stride, kernel / 2, seed, activation);
            convolutions.Add(conv);
            register_module($"conv{i + 1}", conv);
        }

        // The shortcut projection (dense 1x1 conv + BN, torchvision's downsample.0 and .1) when the shapes change. It keeps
        // libtorch's batch norm: the fast kernel rounds differently, and this family's documented results were trained so.
        int inputChannels = shapes[0].In, outputChannels = shapes[^1].Out, blockStride = shapes.Max(s => s.Stride);
        if (blockStride != 1 || inputChannels != outputChannels)
        {
            downsample = nn.Sequential(
                ("0", Connectivity.Dense.Conv2d($"{path}.downsample.0", inputChannels, outputChannels, 1, blockStride, 0, seed)),
                ("1", nn.BatchNorm2d(outputChannels)));
            register_module(nameof(downsample), downsample);
        }
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var conv in convolutions)
        {
            x = conv.call(x);
        }

        var identity = downsample is null ? input : downsample.call(input);
        return nn.functional.relu(x + identity).MoveToOuterDisposeScope();
    }

    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = input;
        for (int i = 0; i < convolutions.Count; i++)
        {
            x = OnnxExport.Module(graph, convolutions[i], x, OnnxExport.Child(path, $"conv{i + 1}"));
        }

        var identity = downsample is null ? input : OnnxExport.Module(graph, downsample, input, OnnxExport.Child(path, "downsample"));
        return graph.Relu(graph.Add(x, identity));
    }
}
