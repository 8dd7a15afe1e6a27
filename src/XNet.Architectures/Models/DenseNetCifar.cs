using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.Architectures.Models;

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
}

/// <summary>
/// DenseNet(-BC) for CIFAR: a 3x3 stem of 2k channels, three dense blocks joined by transitions (1x1 conv keeping
/// floor(reduction x C) channels, 2x2 average pooling), BN, ReLU, global average pooling and a linear classifier.
/// X-DenseNet-BC replaces both bottleneck convolutions of every layer, and the transitions unless they are kept dense
/// (the paper's reference code). Names: <c>densenet-bc-40-24</c>, <c>x-densenet-bc-40-24-2</c> (expander transitions, the
/// README's costs), <c>x-densenet-bc-40-24-2-dt</c> (dense transitions, the logged runs), <c>g-densenet-bc-40-24-2</c>.
/// </summary>
public sealed class DenseNetCifar : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private static readonly Regex NamePattern = new(
        @"^(?<kind>x-|s-|g-)?densenet(?<bc>-bc)?-(?<depth>\d+)-(?<growth>\d+)(?:-(?<factor>\d+(?:\.\d+)?))?(?<dt>-dt)?$",
        RegexOptions.CultureInvariant);

    private readonly nn.Module<Tensor, Tensor> conv1;
    private readonly Sequential blocks;
    private readonly BatchNorm2d bn1;
    private readonly Linear fc;

    /// <summary>Builds the network.</summary>
    public DenseNetCifar(DenseNetCifarConfig config, ImageShape input, int numClasses, long seed)
        : base(nameof(DenseNetCifar))
    {
        int step = config.Bottleneck ? 6 : 3;
        if (config.Depth < 4 + step || (config.Depth - 4) % step != 0)
        {
            throw new ArgumentException(
                $"DenseNet (CIFAR) depth {config.Depth} must be {step}n + 4 with n >= 1{(config.Bottleneck ? " with bottlenecks (40, 58, 70, 100, ...)" : "")}.");
        }

        if (config.Growth < 1 || config.Reduction <= 0 || config.Reduction > 1 || config.DropRate is < 0 or >= 1)
        {
            throw new ArgumentException(
                $"DenseNet (CIFAR): growth {config.Growth} must be positive, reduction {config.Reduction} in (0, 1], dropout {config.DropRate} in [0, 1).");
        }

        ModelChecks.Classes("DenseNet (CIFAR)", numClasses);
        ModelChecks.MinimumSize("DenseNet (CIFAR)", input, 4);
        int channels = 2 * config.Growth;
        conv1 = Connectivity.Dense.Conv2d("conv1", input.Channels, channels, 3, 1, 1, seed);
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        var transitions = config.ExpanderTransitions ? config.Connectivity : Connectivity.Dense;
        for (int b = 1; b <= 3; b++)
        {
            var block = new DenseBlock($"blocks.block{b}", channels, config.LayersPerBlock, config.Growth, config.Bottleneck,
                config.DropRate, config.Connectivity, seed);
            modules.Add(($"block{b}", block));
            channels = block.OutputChannels;
            if (b < 3)
            {
                int reduced = (int)Math.Floor(config.Reduction * channels);
                modules.Add(($"trans{b}", new Transition($"blocks.trans{b}", channels, reduced, config.DropRate, transitions, seed)));
                channels = reduced;
            }
        }

        blocks = nn.Sequential(modules);
        bn1 = nn.BatchNorm2d(channels);
        fc = nn.Linear(channels, numClasses);
        nn.init.zeros_(fc.bias); // the paper's reference code's init; the weight keeps PyTorch's default
        RegisterComponents();
    }

    /// <summary>Canonical names of the registered variants.</summary>
    public static IEnumerable<string> Variants =>
        new[] { 24, 36, 48, 60 }.SelectMany(growth => ConnectivityName.Twins($"densenet-bc-40-{growth}", 2)
            .Append($"x-densenet-bc-40-{growth}-2-dt"))
            .Append("s-densenet-bc-40-24-2");

    /// <summary>
    /// Parses <c>[x-|s-|g-]densenet[-bc]-L-k[-factor][-dt]</c>: <c>-bc</c> turns on bottlenecks and reduction 0.5,
    /// <c>-dt</c> keeps the transitions dense.
    /// </summary>
    public static bool TryParse(string name, out DenseNetCifarConfig? config)
    {
        config = ConnectivityName.Match(NamePattern, name, (m, c) =>
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
        var x = TrainingBatchNorm.Call(bn1, blocks.call(conv1.call(input)), Activation.ReLU);
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1);
        return fc.call(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(IGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.Module(graph, conv1, input, OnnxExport.Child(path, "conv1"));
        x = OnnxExport.Module(graph, blocks, x, OnnxExport.Child(path, "blocks"));
        x = graph.Relu(OnnxExport.BatchNorm(graph, bn1, x, OnnxExport.Child(path, "bn1")));
        x = OnnxExport.GlobalPoolFlatten(graph, x);
        return OnnxExport.Module(graph, fc, x, OnnxExport.Child(path, "fc"));
    }
}
