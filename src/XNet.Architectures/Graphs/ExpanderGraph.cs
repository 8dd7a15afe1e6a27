using static TorchSharp.torch;

namespace XNet.Architectures.Graphs;

/// <summary>
/// A random bipartite expander between the input and output channels of one layer, with the paper's semantics:
/// output-regular, every output channel connected to <see cref="Degree"/> distinct input channels drawn uniformly,
/// D = max(1, floor(C_in / e)) for compression e.
/// </summary>
/// <remarks>
/// The graph is a pure function of (model seed, layer path, sizes, compression): a rebuilt model has the same graphs.
/// The index table is also stored in the layer's state dict, so a saved model keeps its graphs even if this
/// generator ever changes.
/// </remarks>
public sealed class ExpanderGraph
{
    private readonly int[] indices;

    private ExpanderGraph(string layerPath, int inputChannels, int outputChannels, int degree, int[] indices)
    {
        LayerPath = layerPath;
        InputChannels = inputChannels;
        OutputChannels = outputChannels;
        Degree = degree;
        this.indices = indices;
    }

    /// <summary>The layer's path in its model (for example <c>layer2.0.conv1</c>); part of the graph's seed.</summary>
    public string LayerPath { get; }

    /// <summary>Number of input channels (left vertices).</summary>
    public int InputChannels { get; }

    /// <summary>Number of output channels (right vertices).</summary>
    public int OutputChannels { get; }

    /// <summary>Inputs per output channel, D.</summary>
    public int Degree { get; }

    /// <summary>Number of edges, C_out x D.</summary>
    public long EdgeCount => (long)OutputChannels * Degree;

    /// <summary>Fraction of the C_out x C_in channel pairs that are connected.</summary>
    public double Density => (double)EdgeCount / ((long)OutputChannels * InputChannels);

    /// <summary>The degree a compression factor gives: D = max(1, floor(C_in / e)).</summary>
    /// <exception cref="ArgumentException">When e is below 1 or above C_in.</exception>
    public static int DegreeFor(string layerPath, int inputChannels, double compression)
    {
        if (double.IsNaN(compression) || compression < 1 || compression > inputChannels)
        {
            throw new ArgumentException(
                $"Layer '{layerPath}': expander compression e={compression} must lie in [1, C_in={inputChannels}].",
                nameof(compression));
        }

        return Math.Max(1, (int)Math.Floor(inputChannels / compression));
    }

    /// <summary>Draws the graph for one layer from the model seed and the layer path.</summary>
    /// <exception cref="ArgumentException">When a size is not positive or e lies outside [1, C_in].</exception>
    public static ExpanderGraph Create(string layerPath, int inputChannels, int outputChannels, double compression, long seed)
    {
        ArgumentNullException.ThrowIfNull(layerPath);
        if (inputChannels < 1 || outputChannels < 1)
        {
            throw new ArgumentException(
                $"Layer '{layerPath}': channel counts must be positive (C_in={inputChannels}, C_out={outputChannels}).");
        }

        int degree = DegreeFor(layerPath, inputChannels, compression);
        var random = new SplitMix64(SplitMix64.Derive(seed, layerPath));
        var table = new int[outputChannels * degree];
        var pool = new int[inputChannels];
        for (int o = 0; o < outputChannels; o++)
        {
            // Partial Fisher-Yates: the first `degree` entries of a fresh uniform permutation, as the seed's randperm.
            for (int i = 0; i < inputChannels; i++)
            {
                pool[i] = i;
            }

            for (int j = 0; j < degree; j++)
            {
                int pick = j + random.NextInt(inputChannels - j);
                (pool[j], pool[pick]) = (pool[pick], pool[j]);
            }

            Array.Sort(pool, 0, degree);
            Array.Copy(pool, 0, table, o * degree, degree);
        }

        return new ExpanderGraph(layerPath, inputChannels, outputChannels, degree, table);
    }

    /// <summary>Rebuilds a graph from a saved index table (C_out rows of D distinct input indices).</summary>
    /// <exception cref="ArgumentException">When the table has the wrong size, an index is out of range or repeated in a row.</exception>
    public static ExpanderGraph FromIndices(string layerPath, int inputChannels, int outputChannels, IReadOnlyList<long> table)
    {
        if (outputChannels < 1 || table.Count % outputChannels != 0 || table.Count == 0)
        {
            throw new ArgumentException(
                $"Layer '{layerPath}': an index table of {table.Count} entries does not split into C_out={outputChannels} rows.");
        }

        int degree = table.Count / outputChannels;
        var copy = new int[table.Count];
        var seen = new HashSet<long>();
        for (int o = 0; o < outputChannels; o++)
        {
            seen.Clear();
            for (int j = 0; j < degree; j++)
            {
                long index = table[o * degree + j];
                if (index < 0 || index >= inputChannels || !seen.Add(index))
                {
                    throw new ArgumentException(
                        $"Layer '{layerPath}': output channel {o} has input index {index}; expected distinct indices in [0, {inputChannels}).");
                }

                copy[o * degree + j] = (int)index;
            }
        }

        return new ExpanderGraph(layerPath, inputChannels, outputChannels, degree, copy);
    }

    /// <summary>The inputs of output channel <paramref name="output"/>, in ascending order.</summary>
    public ReadOnlySpan<int> InputsOf(int output) => indices.AsSpan(output * Degree, Degree);

    /// <summary>The index table, C_out x D, as an int64 tensor (the layer's <c>indices</c> buffer).</summary>
    public Tensor ToIndexTensor() =>
        tensor(Array.ConvertAll(indices, i => (long)i), new long[] { OutputChannels, Degree }, ScalarType.Int64);

    /// <summary>The 0/1 channel mask, C_out x C_in, as a float32 tensor.</summary>
    public Tensor ToMask()
    {
        var mask = new float[OutputChannels * InputChannels];
        for (int o = 0; o < OutputChannels; o++)
        {
            foreach (int i in InputsOf(o))
            {
                mask[o * InputChannels + i] = 1f;
            }
        }

        return tensor(mask, new long[] { OutputChannels, InputChannels });
    }

    /// <summary>How many outputs read each input channel.</summary>
    public DegreeStatistics InputDegrees()
    {
        var degrees = new int[InputChannels];
        foreach (int i in indices)
        {
            degrees[i]++;
        }

        return DegreeStatistics.Of(degrees);
    }

    /// <summary>Inputs per output channel: always exactly D for this output-regular construction.</summary>
    public DegreeStatistics OutputDegrees() => new(Degree, Degree, Degree, 0);

    /// <summary>
    /// The spectral gap 1 - sigma2/sigma1 of the C_out x C_in biadjacency matrix: near 1 for a good expander,
    /// 0 for a disconnected one (for example a grouped convolution's block-diagonal pattern).
    /// </summary>
    public double SpectralGap()
    {
        using var scope = NewDisposeScope();
        var sigma = linalg.svdvals(ToMask().to_type(ScalarType.Float64)).data<double>().ToArray(); // descending
        if (sigma.Length < 2)
        {
            return 0;
        }

        double sigma1 = sigma[0];
        double sigma2 = sigma[1];
        return sigma1 == 0 ? 0 : 1 - sigma2 / sigma1;
    }
}
