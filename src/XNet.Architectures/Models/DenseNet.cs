using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>Configuration of an ImageNet DenseNet-BC (Huang et al. 2017; torchvision's layout, bn_size 4, reduction 0.5).</summary>
/// <param name="Depth">121, 169, 201 (growth 32) or 161 (growth 48).</param>
/// <param name="Connectivity">Connectivity of both convolutions of every dense layer; stem, transitions and classifier stay dense.</param>
public sealed record DenseNetConfig(int Depth, Connectivity Connectivity)
{
    private static readonly Dictionary<int, (int Growth, int[] Blocks, int InitialFeatures)> Layouts = new()
    {
        [121] = (32, new[] { 6, 12, 24, 16 }, 64),
        [169] = (32, new[] { 6, 12, 32, 32 }, 64),
        [201] = (32, new[] { 6, 12, 48, 32 }, 64),
        [161] = (48, new[] { 6, 12, 36, 24 }, 96),
    };

    /// <summary>The depths with a torchvision layout.</summary>
    public static IReadOnlyCollection<int> Depths => Layouts.Keys;

    /// <summary>Growth rate k.</summary>
    public int Growth => Layout.Growth;

    /// <summary>Dense layers per block.</summary>
    public IReadOnlyList<int> Blocks => Layout.Blocks;

    /// <summary>Channels after the stem.</summary>
    public int InitialFeatures => Layout.InitialFeatures;

    private (int Growth, int[] Blocks, int InitialFeatures) Layout => Layouts.TryGetValue(Depth, out var layout)
        ? layout
        : throw new ArgumentException($"DenseNet depth {Depth} must be one of {string.Join(", ", Layouts.Keys)}.");
}

/// <summary>
/// The ImageNet DenseNet family (121/169/201/161): a 7x7/2 stem with max pooling, four dense blocks joined by
/// transitions (BN, ReLU, 1x1 conv halving the channels, 2x2 average pooling), a final BN and a linear classifier.
/// Module names follow torchvision (features.conv0, features.denseblock1.denselayer1.conv1, features.transition1,
/// features.norm5, classifier; the stem's convolution, BN and ReLU are one <see cref="Conv2dNormActivation"/>, features.conv0.0 and .1), so dense models have torchvision's parameter counts. X-DenseNets replace both
/// convolutions of every dense layer (the paper's reference code).
/// </summary>
public sealed class DenseNet : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?densenet-(?<depth>121|161|169|201)(?:-(?<factor>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private readonly Sequential features;
    private readonly Linear classifier;

    /// <summary>Builds the network.</summary>
    public DenseNet(DenseNetConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(DenseNet))
    {
        ModelChecks.Classes("DenseNet", numClasses);
        ModelChecks.MinimumSize("DenseNet", input, 32);
        int channels = config.InitialFeatures;
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>
        {
            ("conv0", new Conv2dNormActivation(Connectivity.Dense, "features.conv0", input.Channels, channels, 7, 2, 3, seed, Activation.ReLU)),
            ("pool0", nn.MaxPool2d(3, 2, 1)),
        };
        for (int b = 0; b < config.Blocks.Count; b++)
        {
            var block = new DenseBlock($"features.denseblock{b + 1}", channels, config.Blocks[b], config.Growth,
                bottleneck: true, dropRate: 0, config.Connectivity, seed);
            modules.Add(($"denseblock{b + 1}", block));
            channels = block.OutputChannels;
            if (b < config.Blocks.Count - 1)
            {
                modules.Add(($"transition{b + 1}",
                    new Transition($"features.transition{b + 1}", channels, channels / 2, 0, Connectivity.Dense, seed)));
                channels /= 2;
            }
        }

        modules.Add(("norm5", nn.BatchNorm2d(channels)));
        features = nn.Sequential(modules);
        classifier = nn.Linear(channels, numClasses);
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants =>
        DenseNetConfig.Depths.Order().SelectMany(depth => ConnectivityName.Twins($"densenet-{depth}", 2));

    /// <summary>Parses <c>densenet-D</c>, <c>x-densenet-D-e</c> and <c>g-densenet-D-g</c> for D in 121, 161, 169, 201.</summary>
    public static bool TryParse(string name, out DenseNetConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) => new DenseNetConfig(ConnectivityName.Int(m.Groups["depth"].Value), c));
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = nn.functional.relu(features.call(input));
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return classifier.call(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = graph.Relu(OnnxExport.Module(graph, features, input, OnnxExport.Child(path, "features")));
        x = OnnxExport.GlobalPoolFlatten(graph, x);
        return OnnxExport.Module(graph, classifier, x, OnnxExport.Child(path, "classifier"));
    }
}

/// <summary>
/// A dense block: every layer reads the concatenation of the block input and all earlier layers' outputs and adds
/// <c>growth</c> channels.
/// </summary>
internal sealed class DenseBlock : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly List<DenseLayer> layers = new();

    public DenseBlock(string path, int inputChannels, int layerCount, int growth, bool bottleneck, double dropRate,
        Connectivity connectivity, long seed)
        : base(nameof(DenseBlock))
    {
        OutputChannels = inputChannels;
        for (int i = 0; i < layerCount; i++)
        {
            var layer = new DenseLayer($"{path}.denselayer{i + 1}", OutputChannels, growth, bottleneck, dropRate, connectivity, seed);
            layers.Add(layer);
            register_module($"denselayer{i + 1}", layer); // torchvision's names
            OutputChannels += growth;
        }
    }

    public int OutputChannels { get; }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var layer in layers)
        {
            x = cat(new[] { x, layer.call(x) }, 1);
        }

        return x.MoveToOuterDisposeScope();
    }

    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = input;
        for (int i = 0; i < layers.Count; i++)
        {
            string output = OnnxExport.Module(graph, layers[i], x, OnnxExport.Child(path, $"denselayer{i + 1}"));
            x = graph.Concat(new[] { x, output }, 1);
        }

        return x;
    }
}

/// <summary>
/// BN, ReLU, 1x1 conv to 4k, BN, ReLU, 3x3 conv to k (the bottleneck "B" layer); without the bottleneck just BN, ReLU,
/// 3x3 conv to k. Dropout after each convolution when the rate is positive (the paper's reference code's DenseNet-BC for CIFAR).
/// </summary>
internal sealed class DenseLayer : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private const int BottleneckWidth = 4;

    private readonly BatchNorm2d norm1;
    private readonly nn.Module<Tensor, Tensor> conv1;
    private readonly BatchNorm2d? norm2;
    private readonly nn.Module<Tensor, Tensor>? conv2;
    private readonly double dropRate;

    public DenseLayer(string path, int inputChannels, int growth, bool bottleneck, double dropRate, Connectivity connectivity, long seed)
        : base(nameof(DenseLayer))
    {
        this.dropRate = dropRate;
        norm1 = nn.BatchNorm2d(inputChannels);
        if (bottleneck)
        {
            conv1 = connectivity.Conv2d($"{path}.conv1", inputChannels, BottleneckWidth * growth, 1, 1, 0, seed);
            norm2 = nn.BatchNorm2d(BottleneckWidth * growth);
            conv2 = connectivity.Conv2d($"{path}.conv2", BottleneckWidth * growth, growth, 3, 1, 1, seed);
        }
        else
        {
            conv1 = connectivity.Conv2d($"{path}.conv1", inputChannels, growth, 3, 1, 1, seed);
        }

        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = Dropout(conv1.call(TrainingBatchNorm.Call(norm1, input, Activation.ReLU)));
        if (conv2 is not null)
        {
            x = Dropout(conv2.call(TrainingBatchNorm.Call(norm2!, x, Activation.ReLU)));
        }

        return x.MoveToOuterDisposeScope();
    }

    private Tensor Dropout(Tensor x) => dropRate > 0 ? nn.functional.dropout(x, dropRate, training) : x;

    // Pre-activation order (BN, ReLU, conv): the BN cannot fold into the convolution after it, so it stays a node.
    // Dropout is the identity in evaluation mode. conv1's BN (norm2) follows it directly and folds.
    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = graph.Relu(OnnxExport.BatchNorm(graph, norm1, input, OnnxExport.Child(path, "norm1")));
        if (conv2 is null)
        {
            return OnnxExport.ConvBatchNorm(graph, conv1, null, x, OnnxExport.Child(path, "conv1"), null);
        }

        x = graph.Relu(OnnxExport.ConvBatchNorm(graph, conv1, norm2, x, OnnxExport.Child(path, "conv1"), OnnxExport.Child(path, "norm2")));
        return OnnxExport.ConvBatchNorm(graph, conv2, null, x, OnnxExport.Child(path, "conv2"), null);
    }
}

/// <summary>BN, ReLU, 1x1 conv, optional dropout and 2x2 average pooling between dense blocks.</summary>
internal sealed class Transition : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BatchNorm2d norm;
    private readonly nn.Module<Tensor, Tensor> conv;
    private readonly double dropRate;

    public Transition(string path, int inputChannels, int outputChannels, double dropRate, Connectivity connectivity, long seed)
        : base(nameof(Transition))
    {
        this.dropRate = dropRate;
        norm = nn.BatchNorm2d(inputChannels);
        conv = connectivity.Conv2d($"{path}.conv", inputChannels, outputChannels, 1, 1, 0, seed);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = conv.call(TrainingBatchNorm.Call(norm, input, Activation.ReLU));
        if (dropRate > 0)
        {
            x = nn.functional.dropout(x, dropRate, training);
        }

        return nn.functional.avg_pool2d(x, 2).MoveToOuterDisposeScope();
    }

    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = graph.Relu(OnnxExport.BatchNorm(graph, norm, input, OnnxExport.Child(path, "norm")));
        x = OnnxExport.ConvBatchNorm(graph, conv, null, x, OnnxExport.Child(path, "conv"), null);
        return graph.AveragePool(x, new long[] { 2, 2 }, new long[] { 2, 2 }, new long[] { 0, 0 }, ceilMode: false, countIncludePad: true);
    }
}
