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
    public int Growth => TorchvisionLayout.Growth;

    /// <summary>Dense layers per block.</summary>
    public IReadOnlyList<int> Blocks => TorchvisionLayout.Blocks;

    /// <summary>Channels after the stem.</summary>
    public int InitialFeatures => TorchvisionLayout.InitialFeatures;

    private (int Growth, int[] Blocks, int InitialFeatures) TorchvisionLayout => Layouts.TryGetValue(Depth, out var layout)
        ? layout
        : throw new ArgumentException($"DenseNet depth {Depth} must be one of {string.Join(", ", Layouts.Keys)}.");

    /// <summary>Checks the class count, input and depth (in that order), then returns what the network builds.</summary>
    internal DenseNetLayout Layout(ImageShape input, int numClasses)
    {
        ModelChecks.Classes("DenseNet", numClasses);
        ModelChecks.MinimumSize("DenseNet", input, 32);
        // torchvision's DenseNet-BC: bottlenecks, reduction 0.5, dense transitions, no dropout.
        return new(Cifar: false, InitialFeatures, Growth, Blocks, Bottleneck: true, Reduction: 0.5, DropRate: 0, Connectivity, Connectivity.Dense);
    }
}

/// <summary>Configuration of a CIFAR DenseNet (Huang et al. 2017, section 3; the paper's reference code's <c>DenseNet3</c>).</summary>
/// <param name="Depth">Total depth L: 3n + 4 layers, or 6n + 4 with bottlenecks (40, 58, 70, 100, ...).</param>
/// <param name="Growth">Growth rate k.</param>
/// <param name="Connectivity">Connectivity of the dense layers' convolutions; the stem and classifier stay dense.</param>
/// <param name="Bottleneck">DenseNet-B: a 1x1 conv to 4k before every 3x3 conv.</param>
/// <param name="Reduction">DenseNet-C: transitions keep floor(reduction x C) channels (0.5; 1 keeps them all).</param>
/// <param name="ExpanderTransitions">
/// Whether the transitions' 1x1 convs follow <paramref name="Connectivity"/> too. The paper's README's cost table counts
/// them compressed; the paper's logged runs kept them dense.
/// </param>
/// <param name="DropRate">Dropout after every convolution of the dense layers and transitions (0 disables it).</param>
public sealed record DenseNetCifarConfig(int Depth, int Growth, Connectivity Connectivity, bool Bottleneck = true,
    double Reduction = 0.5, bool ExpanderTransitions = true, double DropRate = 0)
{
    /// <summary>Dense layers per block: (L - 4) / 3, halved with bottlenecks.</summary>
    public int LayersPerBlock => Bottleneck ? (Depth - 4) / 6 : (Depth - 4) / 3;

    /// <summary>Checks the configuration, class count and input (in that order), then returns what the network builds.</summary>
    internal DenseNetLayout Layout(ImageShape input, int numClasses)
    {
        int step = Bottleneck ? 6 : 3;
        if (Depth < 4 + step || (Depth - 4) % step != 0)
        {
            throw new ArgumentException(
                $"DenseNet (CIFAR) depth {Depth} must be {step}n + 4 with n >= 1{(Bottleneck ? " with bottlenecks (40, 58, 70, 100, ...)" : "")}.");
        }

        if (Growth < 1 || Reduction <= 0 || Reduction > 1 || DropRate is < 0 or >= 1)
        {
            throw new ArgumentException(
                $"DenseNet (CIFAR): growth {Growth} must be positive, reduction {Reduction} in (0, 1], dropout {DropRate} in [0, 1).");
        }

        ModelChecks.Classes("DenseNet (CIFAR)", numClasses);
        ModelChecks.MinimumSize("DenseNet (CIFAR)", input, 4);
        return new(Cifar: true, 2 * Growth, Growth, Enumerable.Repeat(LayersPerBlock, 3).ToArray(), Bottleneck, Reduction, DropRate,
            Connectivity, ExpanderTransitions ? Connectivity : Connectivity.Dense);
    }
}

/// <summary>What <see cref="DenseNet"/> builds, whichever form: a configuration's values once it has been checked.</summary>
internal sealed record DenseNetLayout(bool Cifar, int InitialFeatures, int Growth, IReadOnlyList<int> Blocks, bool Bottleneck,
    double Reduction, double DropRate, Connectivity Connectivity, Connectivity Transitions);

/// <summary>
/// The DenseNet family: dense blocks joined by transitions (BN, ReLU, 1x1 conv to floor(reduction x C) channels, 2x2
/// average pooling), a final BN and ReLU, global average pooling and a linear classifier.
/// <para>ImageNet (121/169/201/161, <see cref="DenseNetConfig"/>): a 7x7/2 stem with max pooling and four blocks. Module
/// names follow torchvision (features.conv0, features.denseblock1.denselayer1.conv1, features.transition1, features.norm5,
/// classifier; the stem's convolution, BN and ReLU are one <see cref="Conv2dNormActivation"/>, features.conv0.0 and .1), so
/// dense models have torchvision's parameter counts. X-DenseNets replace both convolutions of every dense layer.</para>
/// <para>CIFAR (<see cref="DenseNetCifarConfig"/>, the paper's reference code's <c>DenseNet3</c> and its names: conv1,
/// blocks.block1, blocks.trans1, bn1, fc): a 3x3 stem of 2k channels and three blocks. X-DenseNet-BC replaces both
/// bottleneck convolutions of every layer, and the transitions unless they are kept dense. Names:
/// <c>densenet-bc-40-24</c>, <c>x-densenet-bc-40-24-2</c> (expander transitions, the README's costs),
/// <c>x-densenet-bc-40-24-2-dt</c> (dense transitions, the logged runs), <c>g-densenet-bc-40-24-2</c>.</para>
/// </summary>
public sealed class DenseNet : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?densenet-(?<depth>121|161|169|201)(?:-(?<factor>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private static readonly Regex CifarNamePattern = new(
        @"^(?<kind>x-|s-|g-)?densenet(?<bc>-bc)?-(?<depth>\d+)-(?<growth>\d+)(?:-(?<factor>\d+(?:\.\d+)?))?(?<dt>-dt)?$",
        RegexOptions.CultureInvariant);

    private readonly bool cifar;
    private readonly nn.Module<Tensor, Tensor>? conv1; // CIFAR's stem; ImageNet's is features.conv0
    private readonly Sequential features; // CIFAR's "blocks"
    private readonly BatchNorm2d finalNorm; // CIFAR's bn1; ImageNet's features.norm5, the body's last module
    private readonly Linear classifier; // CIFAR's "fc"

    /// <summary>Builds the ImageNet form.</summary>
    public DenseNet(DenseNetConfig config, ImageShape input, int numClasses, long seed)
        : this(config.Layout(input, numClasses), input, numClasses, seed)
    {
    }

    /// <summary>Builds the CIFAR form.</summary>
    public DenseNet(DenseNetCifarConfig config, ImageShape input, int numClasses, long seed)
        : this(config.Layout(input, numClasses), input, numClasses, seed)
    {
    }

    private DenseNet(DenseNetLayout layout, ImageShape input, int numClasses, long seed)
        : base(nameof(DenseNet))
    {
        cifar = layout.Cifar;
        var (body, block, transition) = cifar ? ("blocks", "block", "trans") : ("features", "denseblock", "transition");
        int channels = layout.InitialFeatures;
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        if (cifar)
        {
            conv1 = Connectivity.Dense.Conv2d("conv1", input.Channels, channels, 3, 1, 1, seed);
            register_module(nameof(conv1), conv1);
        }
        else
        {
            modules.Add(("conv0", new Conv2dNormActivation(Connectivity.Dense, "features.conv0", input.Channels, channels, 7, 2, 3, seed, Activation.ReLU)));
            modules.Add(("pool0", nn.MaxPool2d(3, 2, 1)));
        }

        for (int b = 0; b < layout.Blocks.Count; b++)
        {
            var denseBlock = new DenseBlock($"{body}.{block}{b + 1}", channels, layout.Blocks[b], layout.Growth, layout.Bottleneck,
                layout.DropRate, layout.Connectivity, seed);
            modules.Add(($"{block}{b + 1}", denseBlock));
            channels = denseBlock.OutputChannels;
            if (b < layout.Blocks.Count - 1)
            {
                int reduced = (int)Math.Floor(layout.Reduction * channels);
                modules.Add(($"{transition}{b + 1}",
                    new Transition($"{body}.{transition}{b + 1}", channels, reduced, layout.DropRate, layout.Transitions, seed)));
                channels = reduced;
            }
        }

        finalNorm = nn.BatchNorm2d(channels);
        if (!cifar)
        {
            modules.Add(("norm5", finalNorm));
        }

        features = nn.Sequential(modules);
        register_module(body, features);
        if (cifar)
        {
            register_module("bn1", finalNorm);
        }

        classifier = nn.Linear(channels, numClasses);
        register_module(cifar ? "fc" : nameof(classifier), classifier);
        if (cifar)
        {
            nn.init.zeros_(classifier.bias); // the paper's reference code's init; the weight keeps PyTorch's default
        }
    }

    /// <summary>Canonical names of the registered ImageNet variants.</summary>
    public static IEnumerable<string> Variants =>
        DenseNetConfig.Depths.Order().SelectMany(depth => ConnectivityName.Twins($"densenet-{depth}", 2));

    /// <summary>Canonical names of the registered CIFAR variants.</summary>
    public static IEnumerable<string> CifarVariants =>
        new[] { 24, 36, 48, 60 }.SelectMany(growth => ConnectivityName.Twins($"densenet-bc-40-{growth}", 2)
            .Append($"x-densenet-bc-40-{growth}-2-dt"))
            .Append("s-densenet-bc-40-24-2");

    /// <summary>Parses the ImageNet names <c>densenet-D</c>, <c>x-densenet-D-e</c> and <c>g-densenet-D-g</c> for D in 121, 161, 169, 201.</summary>
    public static bool TryParse(string name, out DenseNetConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) => new DenseNetConfig(ConnectivityName.Int(m.Groups["depth"].Value), c));
        return config is not null;
    }

    /// <summary>
    /// Parses the CIFAR names <c>[x-|s-|g-]densenet[-bc]-L-k[-factor][-dt]</c>: <c>-bc</c> turns on bottlenecks and
    /// reduction 0.5, <c>-dt</c> keeps the transitions dense.
    /// </summary>
    public static bool TryParseCifar(string name, out DenseNetCifarConfig? config)
    {
        config = ConnectivityName.Match(CifarNamePattern, name, (m, c) =>
        {
            bool bc = m.Groups["bc"].Success, denseTransitions = m.Groups["dt"].Success;
            return denseTransitions && c is DenseConnectivity
                ? null // a dense model has no transitions to keep dense
                : new DenseNetCifarConfig(ConnectivityName.Int(m.Groups["depth"].Value), ConnectivityName.Int(m.Groups["growth"].Value), c,
                    Bottleneck: bc, Reduction: bc ? 0.5 : 1, ExpanderTransitions: !denseTransitions);
        });
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = conv1 is null ? input : conv1.call(input);
        // Module by module, so that the final batch norm runs with its ReLU through TrainingBatchNorm in both forms (a plain
        // BatchNorm2d's forward advances its batch counter with a temporary scalar, see TensorSum).
        foreach (var module in features.children().Where(module => module != finalNorm))
        {
            x = ((nn.Module<Tensor, Tensor>)module).call(x);
        }

        x = TrainingBatchNorm.Call(finalNorm, x, Activation.ReLU);
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return classifier.call(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = conv1 is null ? input : OnnxExport.Module(graph, conv1, input, OnnxExport.Child(path, "conv1"));
        x = OnnxExport.Module(graph, features, x, OnnxExport.Child(path, cifar ? "blocks" : "features"));
        x = graph.Relu(cifar ? OnnxExport.BatchNorm(graph, finalNorm, x, OnnxExport.Child(path, "bn1")) : x); // ImageNet: features.norm5
        x = OnnxExport.GlobalPoolFlatten(graph, x);
        return OnnxExport.Module(graph, classifier, x, OnnxExport.Child(path, cifar ? "fc" : "classifier"));
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

    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
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
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
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

    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = graph.Relu(OnnxExport.BatchNorm(graph, norm, input, OnnxExport.Child(path, "norm")));
        x = OnnxExport.ConvBatchNorm(graph, conv, null, x, OnnxExport.Child(path, "conv"), null);
        return graph.AveragePool(x, new long[] { 2, 2 }, new long[] { 2, 2 }, new long[] { 0, 0 }, ceilMode: false, countIncludePad: true);
    }
}
