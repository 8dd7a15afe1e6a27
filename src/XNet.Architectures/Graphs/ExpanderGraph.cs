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
    private int? blockCount;

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
            // Partial Fisher-Yates: the first `degree` entries of a fresh uniform permutation, as the paper's reference code's randperm.
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

    /// <summary>
    /// The number of copies r the structured family uses for a layer: the largest r' in [min(r, 2), r] for which the
    /// construction exists, or 0 when none does (then <see cref="CreateStructured"/> falls back to <see cref="Create"/>).
    /// The construction needs D to divide C_in (so no block straddles two permutations and every output's D inputs are
    /// distinct) and G = r' C_in / D to divide C_out (so every block feeds the same number of outputs).
    /// </summary>
    /// <param name="inputChannels">C_in.</param>
    /// <param name="outputChannels">C_out.</param>
    /// <param name="degree">D.</param>
    /// <param name="copies">The requested r (at least 1).</param>
    public static int StructuredCopiesFor(int inputChannels, int outputChannels, int degree, int copies)
    {
        if (copies < 1 || degree < 1 || inputChannels % degree != 0)
        {
            return 0;
        }

        long blocksPerCopy = inputChannels / degree;
        for (int r = copies; r >= Math.Min(copies, 2); r--)
        {
            if (outputChannels % (r * blocksPerCopy) == 0)
            {
                return r;
            }
        }

        return 0;
    }

    /// <summary>
    /// Draws a graph of the structured expander family, which runs as one channel gather and one grouped convolution:
    /// r seeded random permutations of the C_in inputs are concatenated (r C_in channels) and split into
    /// G = r C_in / D consecutive blocks of D channels; block j feeds the C_out / G consecutive outputs
    /// j C_out / G ... (j + 1) C_out / G - 1. Every output has exactly D distinct inputs, every input is read by exactly
    /// C_out D / C_in outputs, and the block graph (inputs x blocks) is a random (r, D)-biregular graph: connected with
    /// high probability for r &gt;= 2 (a disconnected draw is redrawn from the same stream, up to 64 times), a permuted
    /// block-diagonal graph for r = 1.
    /// </summary>
    /// <remarks>
    /// r is lowered to the largest r' &gt;= min(r, 2) for which the construction exists (<see cref="StructuredCopiesFor"/>);
    /// when none does, the paper's random graph (<see cref="Create"/>) is returned, with the same degree D.
    /// Seeded like <see cref="Create"/>, from (model seed, layer path).
    /// </remarks>
    /// <exception cref="ArgumentException">When a size is not positive, e lies outside [1, C_in] or r is below 1.</exception>
    public static ExpanderGraph CreateStructured(string layerPath, int inputChannels, int outputChannels, double compression, long seed,
        int copies = 2)
    {
        ArgumentNullException.ThrowIfNull(layerPath);
        if (inputChannels < 1 || outputChannels < 1 || copies < 1)
        {
            throw new ArgumentException(
                $"Layer '{layerPath}': channel counts and copies must be positive (C_in={inputChannels}, C_out={outputChannels}, r={copies}).");
        }

        int degree = DegreeFor(layerPath, inputChannels, compression);
        int r = StructuredCopiesFor(inputChannels, outputChannels, degree, copies);
        if (r == 0)
        {
            return Create(layerPath, inputChannels, outputChannels, compression, seed);
        }

        int blocks = r * inputChannels / degree;
        int outputsPerBlock = outputChannels / blocks;
        var random = new SplitMix64(SplitMix64.Derive(seed, layerPath));
        var sequence = new int[r * inputChannels];
        for (int attempt = 0; ; attempt++)
        {
            for (int c = 0; c < r; c++)
            {
                var copy = sequence.AsSpan(c * inputChannels, inputChannels);
                for (int i = 0; i < inputChannels; i++)
                {
                    copy[i] = i;
                }

                for (int i = inputChannels - 1; i > 0; i--)
                {
                    int pick = random.NextInt(i + 1);
                    (copy[i], copy[pick]) = (copy[pick], copy[i]);
                }
            }

            for (int j = 0; j < blocks; j++)
            {
                Array.Sort(sequence, j * degree, degree);
            }

            if (r == 1 || attempt == 63 || BlocksConnected(sequence, inputChannels, blocks, degree))
            {
                break;
            }
        }

        var table = new int[outputChannels * degree];
        for (int o = 0; o < outputChannels; o++)
        {
            Array.Copy(sequence, o / outputsPerBlock * degree, table, o * degree, degree);
        }

        return new ExpanderGraph(layerPath, inputChannels, outputChannels, degree, table);
    }

    /// <summary>
    /// The block-diagonal graph of a grouped convolution with <paramref name="groups"/> groups: output o of group
    /// g = o / (C_out / G) reads the inputs g C_in / G ... (g + 1) C_in / G - 1. Disconnected for G &gt;= 2 (spectral gap 0);
    /// the baseline the expander families are compared with.
    /// </summary>
    /// <exception cref="ArgumentException">When G does not divide both channel counts.</exception>
    public static ExpanderGraph CreateBlockDiagonal(string layerPath, int inputChannels, int outputChannels, int groups)
    {
        ArgumentNullException.ThrowIfNull(layerPath);
        if (groups < 1 || inputChannels < 1 || outputChannels < 1 || inputChannels % groups != 0 || outputChannels % groups != 0)
        {
            throw new ArgumentException(
                $"Layer '{layerPath}': groups g={groups} must be positive and divide C_in={inputChannels} and C_out={outputChannels}.");
        }

        int degree = inputChannels / groups;
        var table = new int[outputChannels * degree];
        for (int o = 0; o < outputChannels; o++)
        {
            int first = o / (outputChannels / groups) * degree;
            for (int j = 0; j < degree; j++)
            {
                table[o * degree + j] = first + j;
            }
        }

        return new ExpanderGraph(layerPath, inputChannels, outputChannels, degree, table);
    }

    /// <summary>
    /// The Ramanujan reference for the spectral gap of a bipartite graph whose outputs have degree
    /// <paramref name="outputDegree"/> and whose inputs have (mean) degree <paramref name="inputDegree"/>: for a
    /// (c, d)-biregular graph sigma1 = sqrt(c d) and a Ramanujan graph has sigma2 &lt;= sqrt(c - 1) + sqrt(d - 1), so the gap,
    /// normalised as <see cref="SpectralGap"/> is, is 1 - (sqrt(c - 1) + sqrt(d - 1)) / sqrt(c d), floored at 0.
    /// </summary>
    public static double RamanujanGap(double outputDegree, double inputDegree)
    {
        if (outputDegree < 1 || inputDegree < 1)
        {
            return 0;
        }

        double bound = Math.Sqrt(outputDegree - 1) + Math.Sqrt(inputDegree - 1);
        return Math.Max(0, 1 - bound / Math.Sqrt(outputDegree * inputDegree));
    }

    /// <summary>
    /// The number of output blocks G: the fewest equal runs of consecutive outputs that share one input row, so the
    /// layer runs exactly as a gather of G x D channels and a convolution with G groups. C_out for a graph without that
    /// structure (the paper's random graph), r C_in / D for the structured family, 1 for a complete graph.
    /// </summary>
    public int BlockCount => blockCount ??= ComputeBlockCount();

    /// <summary>The channels the grouped form gathers: the G blocks' input rows, concatenated (G x D entries).</summary>
    public long[] BlockInputs()
    {
        int blocks = BlockCount, outputsPerBlock = OutputChannels / blocks;
        var gather = new long[blocks * Degree];
        for (int j = 0; j < blocks; j++)
        {
            var row = InputsOf(j * outputsPerBlock);
            for (int t = 0; t < Degree; t++)
            {
                gather[j * Degree + t] = row[t];
            }
        }

        return gather;
    }

    /// <summary>Whether every input and output lies in one connected component (the biadjacency's sigma1 is simple).</summary>
    public bool IsConnected()
    {
        var parent = new int[InputChannels + OutputChannels];
        for (int i = 0; i < parent.Length; i++)
        {
            parent[i] = i;
        }

        for (int o = 0; o < OutputChannels; o++)
        {
            foreach (int i in InputsOf(o))
            {
                Union(parent, i, InputChannels + o);
            }
        }

        int root = Find(parent, 0);
        return parent.Select((_, v) => Find(parent, v)).All(r => r == root);
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

    private int ComputeBlockCount()
    {
        for (int blocks = 1; blocks <= OutputChannels; blocks++)
        {
            if (OutputChannels % blocks != 0)
            {
                continue;
            }

            int size = OutputChannels / blocks;
            bool shared = true;
            for (int o = 0; o < OutputChannels && shared; o++)
            {
                shared = o % size == 0 || InputsOf(o).SequenceEqual(InputsOf(o - 1));
            }

            if (shared)
            {
                return blocks;
            }
        }

        return OutputChannels;
    }

    private static bool BlocksConnected(int[] sequence, int inputChannels, int blocks, int degree)
    {
        var parent = new int[inputChannels + blocks];
        for (int i = 0; i < parent.Length; i++)
        {
            parent[i] = i;
        }

        for (int j = 0; j < blocks; j++)
        {
            for (int t = 0; t < degree; t++)
            {
                Union(parent, sequence[j * degree + t], inputChannels + j);
            }
        }

        int root = Find(parent, 0);
        for (int v = 1; v < parent.Length; v++)
        {
            if (Find(parent, v) != root)
            {
                return false;
            }
        }

        return true;
    }

    private static int Find(int[] parent, int v)
    {
        while (parent[v] != v)
        {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }

        return v;
    }

    private static void Union(int[] parent, int a, int b) => parent[Find(parent, a)] = Find(parent, b);
}
