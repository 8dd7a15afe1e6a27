using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A block-diagonal linear layer: the features split into g groups and group j of the outputs reads only group j of the
/// inputs (the linear counterpart of a grouped convolution, and the grouped twin of <see cref="ExpanderLinear"/>).
/// </summary>
/// <remarks><c>weight</c> is (g, out/g, in/g), so the parameter count is the effective count.</remarks>
public sealed class GroupedLinear : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>Creates the layer with PyTorch's default linear initialisation, U(+-1/sqrt(in/g)), per group.</summary>
    /// <param name="inputFeatures">Input features; divisible by <paramref name="groups"/>.</param>
    /// <param name="outputFeatures">Output features; divisible by <paramref name="groups"/>.</param>
    /// <param name="groups">Number of groups g.</param>
    public GroupedLinear(int inputFeatures, int outputFeatures, int groups)
        : base(nameof(GroupedLinear))
    {
        if (groups < 1 || inputFeatures % groups != 0 || outputFeatures % groups != 0)
        {
            throw new ArgumentException(
                $"GroupedLinear: groups {groups} must be positive and divide in={inputFeatures} and out={outputFeatures}.");
        }

        InputFeatures = inputFeatures;
        OutputFeatures = outputFeatures;
        Groups = groups;
        double bound = 1.0 / Math.Sqrt(inputFeatures / groups);
        // nn.init takes plain doubles (no implicit torch Scalar, see ExpanderConv2d).
        var initialWeight = empty(groups, outputFeatures / groups, inputFeatures / groups);
        var initialBias = empty(outputFeatures);
        nn.init.uniform_(initialWeight, -bound, bound);
        nn.init.uniform_(initialBias, -bound, bound);
        weight = new Parameter(initialWeight);
        bias = new Parameter(initialBias);
        register_parameter(nameof(weight), weight);
        register_parameter(nameof(bias), bias);
    }

    /// <summary>Input features.</summary>
    public int InputFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutputFeatures { get; }

    /// <summary>Number of groups g.</summary>
    public int Groups { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var grouped = input.view(input.shape[0], Groups, InputFeatures / Groups);
        var output = einsum("bgi,goi->bgo", grouped, weight).reshape(input.shape[0], OutputFeatures).Plus(bias);
        return output.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    /// <remarks>
    /// A Gemm over the block-diagonal (out, in) weight: output o of group j = o / (out/g) reads inputs j * in/g ..
    /// (j + 1) * in/g - 1 with weight[j, o mod out/g, i mod in/g], as the einsum in <see cref="forward"/>.
    /// </remarks>
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        var compact = OnnxExport.Data(weight);
        int outPerGroup = OutputFeatures / Groups, inPerGroup = InputFeatures / Groups;
        var dense = new float[(long)OutputFeatures * InputFeatures];
        for (int o = 0; o < OutputFeatures; o++)
        {
            int group = o / outPerGroup;
            Array.Copy(compact, (long)o * inPerGroup, dense, (long)o * InputFeatures + group * inPerGroup, inPerGroup);
        }

        return OnnxExport.Gemm(graph, input, path, dense, new long[] { OutputFeatures, InputFeatures }, OnnxExport.Data(bias));
    }

    /// <inheritdoc />
    public override string ToString() => $"GroupedLinear(in_features={InputFeatures}, out_features={OutputFeatures}, groups={Groups})";
}
