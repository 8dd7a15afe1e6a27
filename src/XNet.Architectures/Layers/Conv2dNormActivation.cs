using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A convolution, a batch norm and an activation: the unit the model families are built from (torchvision's
/// <c>Conv2dNormActivation</c>, whose child names it keeps: <c>0</c> the convolution, <c>1</c> the BatchNorm2d).
/// </summary>
/// <remarks>
/// The batch norm runs through <see cref="TrainingBatchNorm"/>, so training on the CPU takes the vectorised kernel (with
/// the ReLU fused) wherever a model uses this unit; the export folds it into the convolution. The convolution runs
/// through <c>call</c>, so <see cref="ModelCost"/>'s hooks count it.
/// </remarks>
internal sealed class Conv2dNormActivation : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly nn.Module<Tensor, Tensor> conv;
    private readonly BatchNorm2d norm;
    private readonly Activation activation;

    /// <summary>A k x k convolution that follows <paramref name="connectivity"/>, then batch norm and <paramref name="activation"/>.</summary>
    /// <param name="connectivity">The convolution's connectivity.</param>
    /// <param name="layerPath">Seeds the convolution's expander graph and names it in errors (the unit's path in its model).</param>
    /// <param name="inputChannels">C_in.</param>
    /// <param name="outputChannels">C_out.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="stride">Stride.</param>
    /// <param name="padding">Zero padding.</param>
    /// <param name="seed">The model seed.</param>
    /// <param name="activation">The activation after the batch norm.</param>
    public Conv2dNormActivation(Connectivity connectivity, string layerPath, int inputChannels, int outputChannels, int kernelSize,
        int stride, int padding, long seed, Activation activation)
        : this(connectivity.Conv2d(layerPath, inputChannels, outputChannels, kernelSize, stride, padding, seed), outputChannels, activation)
    {
    }

    /// <summary>Follows <paramref name="conv"/> (a Conv2d or an ExpanderConv2d) with a new batch norm and <paramref name="activation"/>.</summary>
    /// <param name="conv">The convolution.</param>
    /// <param name="outputChannels">Its output channels, the batch norm's features.</param>
    /// <param name="activation">The activation after the batch norm.</param>
    public Conv2dNormActivation(nn.Module<Tensor, Tensor> conv, int outputChannels, Activation activation)
        : base(nameof(Conv2dNormActivation))
    {
        this.conv = conv;
        norm = nn.BatchNorm2d(outputChannels);
        this.activation = activation;
        register_module("0", conv);
        register_module("1", norm);
    }

    /// <summary>Registers nothing: the constructor registered the children under torchvision's names, which a parent's
    /// <c>RegisterComponents</c> would otherwise repeat under the field names.</summary>
    protected override void RegisterComponents()
    {
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return TrainingBatchNorm.Call(norm, conv.call(input), activation).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var x = OnnxExport.ConvBatchNorm(graph, conv, norm, input, OnnxExport.Child(path, "0"), OnnxExport.Child(path, "1"));
        return activation switch
        {
            Activation.ReLU => graph.Relu(x),
            Activation.ReLU6 => graph.Clip(x, 0, 6),
            _ => x,
        };
    }
}
