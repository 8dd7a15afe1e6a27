using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Export;
using XNet.Architectures.Graphs;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// A linear layer whose connections follow an <see cref="ExpanderGraph"/>: output o reads only its D inputs.
/// Compact <c>weight</c> (out, D) plus the int64 <c>indices</c> buffer (out, D); forward scatters into a dense
/// (out, in) weight (the reference implementation).
/// </summary>
public sealed class ExpanderLinear : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Parameter weight;
    private readonly Tensor indices;
    private readonly Parameter? bias;
    private ExpanderExecution execution = ExpanderExecution.Auto;

    /// <summary>Creates the layer with a graph drawn from (<paramref name="seed"/>, <paramref name="layerPath"/>).</summary>
    public ExpanderLinear(string layerPath, int inputFeatures, int outputFeatures, double compression, long seed, bool bias = false)
        : this(ExpanderGraph.Create(layerPath, inputFeatures, outputFeatures, compression, seed), bias)
    {
    }

    /// <summary>Creates the layer over a given graph.</summary>
    public ExpanderLinear(ExpanderGraph graph, bool bias = false)
        : base(nameof(ExpanderLinear))
    {
        LayerPath = graph.LayerPath;
        InputFeatures = graph.InputChannels;
        OutputFeatures = graph.OutputChannels;
        Degree = graph.Degree;

        // Kaiming-normal with the full fan-in, as the paper's reference code's ExpanderLinear.
        // nn.init takes plain doubles (no implicit torch Scalar, see ExpanderConv2d).
        var initial = empty(OutputFeatures, Degree);
        nn.init.normal_(initial, 0, Math.Sqrt(2.0 / InputFeatures));
        this.weight = new Parameter(initial);
        this.indices = graph.ToIndexTensor();
        this.bias = bias ? new Parameter(zeros(OutputFeatures)) : null;
        register_parameter(nameof(weight), this.weight);
        register_buffer(nameof(indices), this.indices);
        if (this.bias is not null)
        {
            register_parameter(nameof(bias), this.bias);
        }
    }

    /// <summary>The layer's path in its model.</summary>
    public string LayerPath { get; }

    /// <summary>Input features.</summary>
    public int InputFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutputFeatures { get; }

    /// <summary>Inputs per output, D.</summary>
    public int Degree { get; }

    /// <summary>The compact weight, (out, D).</summary>
    public Parameter Weight => weight;

    /// <summary>The optional bias.</summary>
    public Parameter? Bias => bias;

    /// <summary>The graph as currently held in the <c>indices</c> buffer.</summary>
    public ExpanderGraph Graph
    {
        get
        {
            using var host = indices.cpu(); // disposed here, not left to the finalizer thread
            return ExpanderGraph.FromIndices(LayerPath, InputFeatures, OutputFeatures, host.data<long>().ToArray());
        }
    }

    /// <summary>The equivalent dense weight, (out, in), zero where there is no connection; differentiable.</summary>
    public Tensor DenseWeight()
    {
        using var scope = NewDisposeScope(); // holds the zeros scatter_ writes into (see forward)
        return zeros(new long[] { OutputFeatures, InputFeatures }, weight.dtype, weight.device).scatter_(1, indices, weight)
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How the forward pass runs: <see cref="ExpanderExecution.Reference"/> (the scattered dense weight, the default and what
    /// <see cref="ExpanderExecution.Auto"/> resolves to) or <see cref="ExpanderExecution.GatherMatmul"/> (a gather of every
    /// output's D inputs and a multiply-sum with the compact weight); both exact.
    /// </summary>
    /// <exception cref="ArgumentException">For <see cref="ExpanderExecution.BlockGrouped"/>, which a linear layer does not have.</exception>
    public ExpanderExecution Execution
    {
        get => execution;
        set
        {
            if (value == ExpanderExecution.BlockGrouped)
            {
                throw new ArgumentException($"Layer '{LayerPath}': a linear expander layer has no BlockGrouped execution.", nameof(value));
            }

            execution = value;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Runs in a dispose scope of its own, so that the layer is safe outside a model's scope: the scope holds every
    /// intermediate tensor until the pass returns, where an unreferenced one could be freed by the finalizer thread while
    /// libtorch still reads it.
    /// </remarks>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var output = execution == ExpanderExecution.GatherMatmul ? GatherMatmulForward(input) : nn.functional.linear(input, DenseWeight(), bias);
        return output.MoveToOuterDisposeScope();
    }

    private Tensor GatherMatmulForward(Tensor input)
    {
        var leading = input.shape[..^1];
        var rows = input.reshape(-1, InputFeatures);
        var gathered = rows.index_select(1, indices.view(-1)).view(-1, OutputFeatures, Degree);
        var y = (gathered * weight).sum(2);
        if (bias is not null)
        {
            y = y.Plus(bias);
        }

        return y.reshape(leading.Append(OutputFeatures).ToArray());
    }

    /// <inheritdoc />
    /// <remarks>A Gemm over the same dense weight as <see cref="forward"/> (zero where there is no connection).</remarks>
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        using var noGrad = no_grad();
        using var dense = DenseWeight();
        return OnnxExport.Gemm(graph, input, path, OnnxExport.Data(dense), dense.shape, bias is null ? null : OnnxExport.Data(bias));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"ExpanderLinear(in_features={InputFeatures}, out_features={OutputFeatures}, degree={Degree}, bias={bias is not null})";
}
