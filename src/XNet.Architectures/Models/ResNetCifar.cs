using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

/// <summary>Configuration of a CIFAR-style ResNet (He et al. 2016, section 4.2).</summary>
/// <param name="Depth">Total depth 6n + 2 (20, 32, 44, 56, 110, ...).</param>
/// <param name="Connectivity">Connectivity of the residual-branch 3x3 convolutions; stem, shortcuts and classifier stay dense.</param>
public sealed record ResNetCifarConfig(int Depth, Connectivity Connectivity)
{
    /// <summary>Stage widths of the CIFAR ResNet.</summary>
    public static IReadOnlyList<int> Widths { get; } = new[] { 16, 32, 64 };

    /// <summary>Basic blocks per stage, n = (depth - 2) / 6.</summary>
    public int BlocksPerStage => (Depth - 2) / 6;
}

/// <summary>
/// The CIFAR ResNet family: a 3x3 stem of 16 channels, three stages of n basic blocks (16, 32, 64 channels; strides
/// 1, 2, 2), global average pooling and a linear classifier. Module names follow torchvision's ResNet (conv1, bn1,
/// layer1..3, fc; blocks with conv1, bn1, conv2, bn2, downsample). Shortcuts that change shape are a 1x1 convolution
/// plus BatchNorm (option B of the paper). Any input size and channel count works (28x28x1 included).
/// </summary>
public sealed class ResNetCifar : nn.Module<Tensor, Tensor>
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|g-)?resnet-(?<depth>\d+)(?:-(?<factor>\d+(?:\.\d+)?))?$", RegexOptions.CultureInvariant);

    private readonly nn.Module<Tensor, Tensor> conv1;
    private readonly BatchNorm2d bn1;
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

        if (numClasses < 2)
        {
            throw new ArgumentException($"ResNet (CIFAR): number of classes {numClasses} must be at least 2.");
        }

        input.Validate("ResNet (CIFAR) input");
        var widths = ResNetCifarConfig.Widths;
        conv1 = Connectivity.Dense.Conv2d("conv1", input.Channels, widths[0], 3, 1, 1, seed);
        bn1 = nn.BatchNorm2d(widths[0]);
        int channels = widths[0];
        layer1 = MakeStage("layer1", ref channels, widths[0], 1, config, seed);
        layer2 = MakeStage("layer2", ref channels, widths[1], 2, config, seed);
        layer3 = MakeStage("layer3", ref channels, widths[2], 2, config, seed);
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, numClasses);
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants
    {
        get
        {
            foreach (int depth in new[] { 20, 32, 44, 56, 110 })
            {
                yield return $"resnet-{depth}";
                foreach (int factor in new[] { 2, 4 })
                {
                    yield return $"x-resnet-{depth}-{factor}";
                    yield return $"g-resnet-{depth}-{factor}";
                }
            }
        }
    }

    /// <summary>
    /// Parses <c>resnet-D</c> (dense), <c>x-resnet-D-e</c> (expander, compression e) and <c>g-resnet-D-g</c> (grouped, g groups).
    /// </summary>
    public static bool TryParse(string name, out ResNetCifarConfig? config)
    {
        config = null;
        var match = NamePattern.Match(name);
        if (!match.Success)
        {
            return false;
        }

        int depth = int.Parse(match.Groups["depth"].Value, CultureInfo.InvariantCulture);
        string kind = match.Groups["kind"].Value;
        string factor = match.Groups["factor"].Value;
        Connectivity? connectivity = (kind, factor.Length > 0) switch
        {
            ("", false) => Connectivity.Dense,
            ("x-", true) => Connectivity.Expander(double.Parse(factor, CultureInfo.InvariantCulture)),
            ("g-", true) when int.TryParse(factor, NumberStyles.None, CultureInfo.InvariantCulture, out int groups) =>
                Connectivity.Grouped(groups),
            _ => null,
        };
        if (connectivity is null)
        {
            return false;
        }

        config = new ResNetCifarConfig(depth, connectivity);
        return true;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = nn.functional.relu(bn1.forward(conv1.forward(input)));
        x = layer3.forward(layer2.forward(layer1.forward(x)));
        x = avgpool.forward(x).flatten(1);
        return fc.forward(x).MoveToOuterDisposeScope();
    }

    private static Sequential MakeStage(string path, ref int channels, int width, int stride, ResNetCifarConfig config, long seed)
    {
        var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int i = 0; i < config.BlocksPerStage; i++)
        {
            blocks.Add(($"{i}", new BasicBlock($"{path}.{i}", channels, width, i == 0 ? stride : 1, config.Connectivity, seed)));
            channels = width;
        }

        return nn.Sequential(blocks);
    }

    /// <summary>Two 3x3 convolutions with BatchNorm and ReLU, plus the identity (or projection) shortcut.</summary>
    private sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> conv1;
        private readonly BatchNorm2d bn1;
        private readonly nn.Module<Tensor, Tensor> conv2;
        private readonly BatchNorm2d bn2;
        private readonly Sequential? downsample;

        public BasicBlock(string path, int inputChannels, int width, int stride, Connectivity connectivity, long seed)
            : base(nameof(BasicBlock))
        {
            conv1 = connectivity.Conv2d($"{path}.conv1", inputChannels, width, 3, stride, 1, seed);
            bn1 = nn.BatchNorm2d(width);
            conv2 = connectivity.Conv2d($"{path}.conv2", width, width, 3, 1, 1, seed);
            bn2 = nn.BatchNorm2d(width);
            if (stride != 1 || inputChannels != width)
            {
                downsample = nn.Sequential(
                    ("0", Connectivity.Dense.Conv2d($"{path}.downsample.0", inputChannels, width, 1, stride, 0, seed)),
                    ("1", nn.BatchNorm2d(width)));
            }

            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            var x = nn.functional.relu(bn1.forward(conv1.forward(input)));
            x = bn2.forward(conv2.forward(x));
            var identity = downsample is null ? input : downsample.forward(input);
            return nn.functional.relu(x + identity).MoveToOuterDisposeScope();
        }
    }
}
