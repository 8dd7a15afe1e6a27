using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>
/// Configuration of a ResNet (He et al. 2016): the ImageNet form (torchvision's v1.5 layout) or the CIFAR form (section 4.2).
/// </summary>
/// <param name="Depth">ImageNet: 18, 34, 50, 101 or 152. CIFAR: 6n + 2 (20, 32, 44, 56, 110, ...).</param>
/// <param name="Connectivity">Connectivity of every residual-branch convolution; stem, shortcut projections and classifier stay dense.</param>
/// <param name="Cifar">The CIFAR form: a 3x3 stem and three stages of n = (depth - 2) / 6 basic blocks, 16, 32 and 64 wide.</param>
/// <param name="WidthMultiplier">Scales every stage width (and the stem, as wide as the first stage), rounded: the paper's
/// argument is that an X-Net can afford wider layers than a dense net of the same cost: <c>x-resnet-20-8-w1.4</c> (70,653
/// parameters), <c>x-resnet-20-4</c> (72,026) and <c>resnet-20-w0.5</c> (68,786) cost about the same at 3x32x32.</param>
public sealed record ResNetConfig(int Depth, Connectivity Connectivity, bool Cifar = false, double WidthMultiplier = 1)
{
    private static readonly Dictionary<int, (int[] Blocks, bool Bottleneck)> Layouts = new()
    {
        [18] = (new[] { 2, 2, 2, 2 }, false),
        [34] = (new[] { 3, 4, 6, 3 }, false),
        [50] = (new[] { 3, 4, 6, 3 }, true),
        [101] = (new[] { 3, 4, 23, 3 }, true),
        [152] = (new[] { 3, 8, 36, 3 }, true),
    };

    /// <summary>The ImageNet depths (those with a torchvision layout).</summary>
    public static IReadOnlyCollection<int> Depths => Layouts.Keys;

    /// <summary>The stage widths (a bottleneck's inner width): 16, 32, 64 or 64, 128, 256, 512 at <see cref="WidthMultiplier"/> 1.</summary>
    public IReadOnlyList<int> StageWidths =>
        (Cifar ? new[] { 16, 32, 64 } : new[] { 64, 128, 256, 512 }).Select(w => Math.Max(1, (int)Math.Round(w * WidthMultiplier))).ToArray();

    /// <summary>Blocks per stage.</summary>
    public IReadOnlyList<int> Blocks => Cifar ? Enumerable.Repeat((Depth - 2) / 6, 3).ToArray() : Layout.Blocks;

    /// <summary>Whether the blocks are bottlenecks (1x1, 3x3, 1x1 with expansion 4) rather than basic blocks.</summary>
    public bool Bottleneck => !Cifar && Layout.Bottleneck;

    /// <summary>The family's name in error messages.</summary>
    internal string Family => Cifar ? "ResNet (CIFAR)" : "ResNet";

    private (int[] Blocks, bool Bottleneck) Layout => Layouts.TryGetValue(Depth, out var layout)
        ? layout
        : throw new ArgumentException($"ResNet depth {Depth} must be one of {string.Join(", ", Layouts.Keys)}.");

    /// <summary>Throws for a configuration, input or class count the network cannot be built for.</summary>
    internal void Validate(ImageShape input, int numClasses)
    {
        if (Cifar && (Depth < 8 || (Depth - 2) % 6 != 0))
        {
            throw new ArgumentException($"ResNet (CIFAR) depth {Depth} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...).");
        }

        if (!(WidthMultiplier > 0) || WidthMultiplier > 16)
        {
            throw new ArgumentException($"{Family} width multiplier {WidthMultiplier} must be in (0, 16].");
        }

        ModelChecks.Classes(Family, numClasses);
        if (Cifar)
        {
            input.Validate("ResNet (CIFAR) input"); // no pooling before the global one: any size works (28x28x1 included)
        }
        else
        {
            ModelChecks.MinimumSize(Family, input, 32);
            _ = Layout; // throws for a depth without a torchvision layout
        }
    }
}

/// <summary>
/// The ResNet family. ImageNet (ResNet-18/34/50/101/152): a 7x7/2 stem with max pooling, four stages of basic or
/// bottleneck blocks (64, 128, 256, 512 wide; stride on the 3x3 conv). CIFAR (ResNet-20/32/44/56/110, ...): a 3x3 stem of
/// 16 channels and three stages of n basic blocks (16, 32, 64 wide; strides 1, 2, 2). Both end in global average pooling
/// and a linear classifier; shortcuts that change shape are a 1x1 convolution plus BatchNorm (option B of the paper).
/// Module names follow torchvision (conv1, layer1..4, fc; blocks with conv1, conv2[, conv3], downsample; a convolution
/// and its batch norm are one <see cref="Conv2dNormActivation"/>, conv1.0 and conv1.1), so the dense ImageNet models have
/// torchvision's exact parameter counts. X-ResNets replace every residual-branch convolution (the paper's reference code).
/// </summary>
public sealed class ResNet : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    /// <summary>The bottleneck's expansion: its last 1x1 convolution widens the block to 4 x its width.</summary>
    private const int Expansion = 4;

    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?resnet-(?<depth>18|34|50|101|152)(?:-(?<factor>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private static readonly Regex CifarNamePattern = new(
        @"^(?<kind>x-|s-|g-)?resnet-(?<depth>\d+)(?:-(?<factor>\d+(?:\.\d+)?))?(?:-w(?<width>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private readonly Conv2dNormActivation conv1;
    private readonly MaxPool2d? maxpool;
    private readonly List<Sequential> layers = new();
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    /// <summary>Builds the network.</summary>
    /// <param name="config">Form, depth, connectivity and width.</param>
    /// <param name="input">Input image shape.</param>
    /// <param name="numClasses">Number of classes.</param>
    /// <param name="seed">Model seed for expander graphs.</param>
    public ResNet(ResNetConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(ResNet))
    {
        config.Validate(input, numClasses);
        var widths = config.StageWidths;
        var (kernel, stride, padding) = config.Cifar ? (3, 1, 1) : (7, 2, 3);
        // Registered one by one, in torchvision's order, so that state dicts list conv1, layer1.., fc as before.
        conv1 = new Conv2dNormActivation(Connectivity.Dense, "conv1", input.Channels, widths[0], kernel, stride, padding, seed, Activation.ReLU);
        register_module(nameof(conv1), conv1);
        if (!config.Cifar)
        {
            maxpool = nn.MaxPool2d(3, 2, 1);
            register_module(nameof(maxpool), maxpool);
        }

        int channels = widths[0];
        for (int i = 0; i < widths.Count; i++)
        {
            layers.Add(MakeStage($"layer{i + 1}", ref channels, widths[i], config.Blocks[i], i == 0 ? 1 : 2, config.Bottleneck, config.Connectivity, seed));
            register_module($"layer{i + 1}", layers[i]);
        }

        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        register_module(nameof(avgpool), avgpool);
        register_module(nameof(fc), fc);
    }

    /// <summary>Canonical names of the registered ImageNet variants.</summary>
    public static IEnumerable<string> Variants =>
        ResNetConfig.Depths.SelectMany(depth => ConnectivityName.Twins($"resnet-{depth}", 2, 4)).Append("s-resnet-18-2");

    /// <summary>Canonical names of the registered CIFAR variants.</summary>
    public static IEnumerable<string> CifarVariants =>
        new[] { 20, 32, 44, 56, 110 }.SelectMany(depth => ConnectivityName.Twins($"resnet-{depth}", 2, 4))
            .Concat(new[] { "s-resnet-20-2", "s-resnet-20-4", "s-resnet-56-4" })
            .Concat(new[] { "resnet-20-w0.5", "x-resnet-20-8", "g-resnet-20-8", "x-resnet-20-8-w1.4" });

    /// <summary>Parses the ImageNet names <c>resnet-D</c>, <c>x-resnet-D-e</c> and <c>g-resnet-D-g</c> for D in 18, 34, 50, 101, 152.</summary>
    public static bool TryParse(string name, out ResNetConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) => new ResNetConfig(ConnectivityName.Int(m.Groups["depth"].Value), c));
        return config is not null;
    }

    /// <summary>
    /// Parses the CIFAR names <c>resnet-D</c> (dense), <c>x-resnet-D-e</c> (expander, compression e), <c>s-resnet-D-e[-rN]</c>
    /// (structured expander, compression e, r = N or 2 permutations) and <c>g-resnet-D-g</c> (grouped, g groups), each with
    /// an optional width multiplier suffix <c>-wM</c> (<c>resnet-20-w0.5</c>, <c>x-resnet-20-8-w1.4</c>). Depths 18, 34, 50,
    /// 101 and 152 name the ImageNet models (<see cref="TryParse"/>), not these.
    /// </summary>
    public static bool TryParseCifar(string name, out ResNetConfig? config)
    {
        config = ConnectivityName.Match(CifarNamePattern, name, (m, c) =>
        {
            int depth = ConnectivityName.Int(m.Groups["depth"].Value);
            double width = m.Groups["width"].Success
                ? double.Parse(m.Groups["width"].Value, System.Globalization.CultureInfo.InvariantCulture)
                : 1;
            return ResNetConfig.Depths.Contains(depth) || !(width > 0) ? null : new ResNetConfig(depth, c, Cifar: true, width);
        });
        return config is not null;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = conv1.call(input);
        if (maxpool is not null)
        {
            x = maxpool.call(x);
        }

        foreach (var layer in layers)
        {
            x = is_grad_enabled() ? layer.call(x) : Score(layer, x);
        }

        return fc.call(avgpool.call(x).flatten(1)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.Module(graph, conv1, input, OnnxExport.Child(path, "conv1"));
        if (maxpool is not null)
        {
            x = OnnxExport.Module(graph, maxpool, x, OnnxExport.Child(path, "maxpool"));
        }

        for (int i = 0; i < layers.Count; i++)
        {
            x = OnnxExport.Module(graph, layers[i], x, OnnxExport.Child(path, $"layer{i + 1}"));
        }

        x = graph.Flatten(OnnxExport.Module(graph, avgpool, x, OnnxExport.Child(path, "avgpool")), 1);
        return OnnxExport.Module(graph, fc, x, OnnxExport.Child(path, "fc"));
    }

    /// <summary>
    /// A stage without gradients: its blocks through <see cref="ResidualRunInference"/> where it takes them (folded
    /// inference), otherwise block by block.
    /// </summary>
    private static Tensor Score(Sequential stage, Tensor x) =>
        ResidualRunInference.TryRun(stage.children().Cast<ResidualBlock>().Select(block => block.Branch).ToList(), x) ?? stage.call(x);

    /// <summary>A stage of <paramref name="blocks"/> blocks; the first one strides and projects the shortcut when needed.</summary>
    /// <param name="path">The stage's module path (layer1, ...).</param>
    /// <param name="channels">Channels entering the stage; updated to the channels leaving it.</param>
    /// <param name="width">The blocks' width (the bottleneck's inner width).</param>
    /// <param name="blocks">Number of blocks.</param>
    /// <param name="stride">Stride of the first block.</param>
    /// <param name="bottleneck">Bottleneck (expansion 4) or basic blocks.</param>
    /// <param name="connectivity">Connectivity of the residual-branch convolutions.</param>
    /// <param name="seed">The model seed.</param>
    private static Sequential MakeStage(string path, ref int channels, int width, int blocks, int stride, bool bottleneck,
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
    private readonly Conv2dNormActivation? downsample;

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
        // libtorch's batch norm in training: the fast kernel rounds differently, and this family's documented results were
        // trained so. In inference it folds like the other units.
        int inputChannels = shapes[0].In, outputChannels = shapes[^1].Out, blockStride = shapes.Max(s => s.Stride);
        if (blockStride != 1 || inputChannels != outputChannels)
        {
            downsample = new Conv2dNormActivation(Connectivity.Dense, $"{path}.downsample.0", inputChannels, outputChannels, 1, blockStride, 0,
                seed, Activation.None) { KeepsLibtorchNorm = true };
            register_module(nameof(downsample), downsample);
        }
    }

    /// <summary>The residual branch's units and the shortcut projection, if any.</summary>
    public ResidualBranch Branch => new(convolutions, downsample);

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor x, identity;
        if (downsample is null)
        {
            // The first convolution hands the input back from its autograd node, so that the input's two gradients (the
            // branch's and the shortcut's) are summed in that convolution's backward pass.
            (x, identity) = convolutions[0].ForwardSharingInput(input);
            if (!ReferenceEquals(identity, input))
            {
                scope.Attach(identity);
            }
        }
        else
        {
            (x, identity) = (convolutions[0].call(input), downsample.call(input));
        }

        for (int i = 1; i < convolutions.Count - 1; i++)
        {
            x = convolutions[i].call(x);
        }

        // The last unit adds the shortcut and applies the ReLU in its batch norm's pass (training) or its convolution's
        // (folded inference), instead of an addition and a ReLU over the whole output each.
        return convolutions[^1].Forward(x, identity.contiguous(), Activation.ReLU).MoveToOuterDisposeScope();
    }

    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
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
