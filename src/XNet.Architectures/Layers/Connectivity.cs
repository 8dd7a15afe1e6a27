using TorchSharp;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// How a convolution connects its input channels to its output channels. Every model family takes one, so each
/// X-model has a dense twin and a grouped-convolution twin (the paper's baselines) from the same builder.
/// </summary>
public abstract record Connectivity
{
    private protected Connectivity()
    {
    }

    /// <summary>Every output channel sees every input channel.</summary>
    public static Connectivity Dense { get; } = new DenseConnectivity();

    /// <summary>A grouped convolution with <paramref name="groups"/> groups (density 1/g, block-diagonal).</summary>
    public static Connectivity Grouped(int groups) => new GroupedConnectivity(groups);

    /// <summary>An expander convolution with compression <paramref name="compression"/> (density about 1/e, random).</summary>
    public static Connectivity Expander(double compression) => new ExpanderConnectivity(compression);

    /// <summary>
    /// A structured expander (density about 1/e) that runs as a channel gather and one grouped convolution:
    /// <paramref name="copies"/> random permutations of the inputs split into blocks of D (<see cref="Graphs.ExpanderGraph.CreateStructured"/>).
    /// </summary>
    public static Connectivity StructuredExpander(double compression, int copies = StructuredExpanderConnectivity.DefaultCopies) =>
        new StructuredExpanderConnectivity(compression, copies);

    /// <summary>Builds a k x k convolution without bias that follows this connectivity.</summary>
    /// <param name="layerPath">The layer's path in its model (seeds expander graphs, names the layer in errors).</param>
    /// <param name="inputChannels">C_in.</param>
    /// <param name="outputChannels">C_out.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="padding">Zero padding.</param>
    /// <param name="seed">The model seed.</param>
    public abstract nn.Module<Tensor, Tensor> Conv2d(string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed);

    /// <summary>Builds a linear layer that follows this connectivity (expander layers carry no bias, as in the paper).</summary>
    /// <param name="layerPath">The layer's path in its model.</param>
    /// <param name="inputFeatures">Input features.</param>
    /// <param name="outputFeatures">Output features.</param>
    /// <param name="seed">The model seed.</param>
    public abstract nn.Module<Tensor, Tensor> Linear(string layerPath, int inputFeatures, int outputFeatures, long seed);

    /// <summary>A dense convolution initialised as torchvision's ResNet does (Kaiming-normal, fan_out, ReLU).</summary>
    private protected static nn.Module<Tensor, Tensor> KaimingConv2d(int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, int groups)
    {
        var conv = nn.Conv2d(inputChannels, outputChannels, kernelSize, stride: stride, padding: padding, groups: groups, bias: false);
        nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
        return conv;
    }
}

/// <summary>Dense connectivity: an ordinary convolution.</summary>
public sealed record DenseConnectivity : Connectivity
{
    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Conv2d(string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed) =>
        KaimingConv2d(inputChannels, outputChannels, kernelSize, stride, padding, groups: 1);

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Linear(string layerPath, int inputFeatures, int outputFeatures, long seed) =>
        nn.Linear(inputFeatures, outputFeatures);

    /// <inheritdoc />
    public override string ToString() => "dense";
}

/// <summary>Grouped connectivity: a convolution with <paramref name="Groups"/> groups.</summary>
/// <param name="Groups">Number of groups g; must divide both channel counts of every layer it is used for.</param>
public sealed record GroupedConnectivity(int Groups) : Connectivity
{
    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Conv2d(string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed)
    {
        CheckDivides(layerPath, inputChannels, outputChannels);
        return KaimingConv2d(inputChannels, outputChannels, kernelSize, stride, padding, Groups);
    }

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Linear(string layerPath, int inputFeatures, int outputFeatures, long seed)
    {
        CheckDivides(layerPath, inputFeatures, outputFeatures);
        return new GroupedLinear(inputFeatures, outputFeatures, Groups);
    }

    private void CheckDivides(string layerPath, int inputs, int outputs)
    {
        if (Groups < 1 || inputs % Groups != 0 || outputs % Groups != 0)
        {
            throw new ArgumentException(
                $"Layer '{layerPath}': groups g={Groups} must be positive and divide C_in={inputs} and C_out={outputs}.");
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"grouped(g={Groups})";
}

/// <summary>Expander connectivity: an <see cref="ExpanderConv2d"/> with compression <paramref name="Compression"/>.</summary>
/// <param name="Compression">Compression e, in [1, C_in] of every layer it is used for.</param>
public sealed record ExpanderConnectivity(double Compression) : Connectivity
{
    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Conv2d(string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed) =>
        new ExpanderConv2d(layerPath, inputChannels, outputChannels, kernelSize, Compression, seed, stride, padding);

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Linear(string layerPath, int inputFeatures, int outputFeatures, long seed) =>
        new ExpanderLinear(layerPath, inputFeatures, outputFeatures, Compression, seed);

    /// <inheritdoc />
    public override string ToString() => $"expander(e={Compression:0.###})";
}

/// <summary>
/// Structured expander connectivity: an <see cref="ExpanderConv2d"/> over <see cref="Graphs.ExpanderGraph.CreateStructured"/>'s graph
/// (r permutations of the inputs, blocks of D, each block feeding C_out / G outputs), which runs as a gather and one grouped
/// convolution. Same degree D, parameters and MACs as <see cref="ExpanderConnectivity"/>; where a layer's shape admits no
/// structured graph, that layer gets the paper's random graph.
/// </summary>
/// <param name="Compression">Compression e, in [1, C_in] of every layer it is used for.</param>
/// <param name="Copies">Permutations r (at least 1; 1 gives a permuted block-diagonal graph, r &gt;= 2 an expander).</param>
public sealed record StructuredExpanderConnectivity(double Compression, int Copies) : Connectivity
{
    /// <summary>The r the zoo's <c>s-</c> names use when they carry no <c>-rN</c> suffix.</summary>
    public const int DefaultCopies = 2;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Conv2d(string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed) =>
        new ExpanderConv2d(Graphs.ExpanderGraph.CreateStructured(layerPath, inputChannels, outputChannels, Compression, seed, Copies),
            kernelSize, stride, padding);

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> Linear(string layerPath, int inputFeatures, int outputFeatures, long seed) =>
        new ExpanderLinear(Graphs.ExpanderGraph.CreateStructured(layerPath, inputFeatures, outputFeatures, Compression, seed, Copies));

    /// <inheritdoc />
    public override string ToString() => $"structured-expander(e={Compression:0.###}, r={Copies})";
}
