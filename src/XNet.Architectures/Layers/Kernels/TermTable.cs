namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The terms of one kernel pass, grouped by output plane: plane q owns entries [Start[q], Start[q + 1]) of
/// <see cref="Offset"/>, each with <see cref="GroupSize"/> weights taken from the layer's flat compact weight at
/// <see cref="WeightIndex"/> (a term: 1 weight; a 3 x 3 stencil group: 9, in the order its kernel applies them). A stride-2 stencil group
/// (<see cref="PhaseStep"/> above 0) reads its taps from 4 phase planes <see cref="PhaseStep"/> elements apart, with its
/// weights in the kernel's (row, column) order.
/// </summary>
internal sealed record TermTable(int[] Start, nint[] Offset, long[] WeightIndex, int GroupSize, nint PhaseStep = 0)
{
    /// <summary>
    /// Whether entry k applies flat weight k, for every k and every weight (the 3 x 3 stencils' forward and weight-gradient
    /// tables): the pass then reads the compact weight, and writes its gradient, in place.
    /// </summary>
    public bool WeightsInOrder { get; } = WeightIndex.Select((w, k) => w == k).All(x => x);

    /// <summary>Builds a table from each plane's (input offset, flat weight index) terms, in order.</summary>
    public static TermTable FromTerms(IReadOnlyList<List<(nint Offset, long Weight)>> planes)
    {
        var start = new int[planes.Count + 1];
        var offset = new nint[planes.Sum(p => p.Count)];
        var weight = new long[offset.Length];
        for (int q = 0, at = 0; q < planes.Count; q++)
        {
            foreach (var term in planes[q])
            {
                (offset[at], weight[at]) = term;
                at++;
            }

            start[q + 1] = at;
        }

        return new TermTable(start, offset, weight, 1);
    }

    /// <summary>
    /// The same terms as stride-2 3 x 3 stencil groups: every run of 9 terms (one output, one input, taps in kernel order)
    /// becomes one group at its first tap's offset, which is the input's phase (0, 0) plane.
    /// </summary>
    public TermTable ToPhaseGroups(nint phasePlane)
    {
        var start = Start.Select(s => s / 9).ToArray();
        var origin = Enumerable.Range(0, Offset.Length / 9).Select(g => Offset[9 * g]).ToArray();
        return new TermTable(start, origin, WeightIndex, 9, phasePlane);
    }

    /// <summary>
    /// The groups in the order of the input they read (their <see cref="Offset"/>; ties in plane order), with each group's
    /// plane: the order in which a weight-gradient pass reads each input once and its output-gradient planes many times.
    /// </summary>
    public (int[] Groups, int[] Planes) ByInput()
    {
        var planes = new int[Offset.Length];
        for (int q = 0; q + 1 < Start.Length; q++)
        {
            Array.Fill(planes, q, Start[q], Start[q + 1] - Start[q]);
        }

        var groups = Enumerable.Range(0, Offset.Length).OrderBy(g => Offset[g]).ThenBy(g => g).ToArray();
        return (groups, planes);
    }

    /// <summary>
    /// The same terms in blocks of <paramref name="perBlock"/> source planes of <paramref name="sourcePlane"/> floats
    /// each: run (k, q), entries [Start[k · planes + q], Start[k · planes + q + 1]), holds plane q's terms that read
    /// source planes [k · perBlock, (k + 1) · perBlock), in the order of their offsets; Start has blocks · planes + 1
    /// entries. A pass that runs every plane's terms of one block before the next reads each block's source rows from
    /// the nearest cache (<see cref="Pointwise.Correlate"/>).
    /// </summary>
    public TermTable InSourceBlocks(int sourcePlane, int perBlock, int blocks)
    {
        int planes = Start.Length - 1;
        var runs = Enumerable.Range(0, blocks * planes).Select(_ => new List<(nint, long)>()).ToList();
        for (int q = 0; q < planes; q++)
        {
            for (int t = Start[q]; t < Start[q + 1]; t++)
            {
                int block = (int)(Offset[t] / sourcePlane / perBlock);
                runs[block * planes + q].Add((Offset[t], WeightIndex[t]));
            }
        }

        return FromTerms(runs.Select(run => run.OrderBy(term => term.Item1).ToList()).ToList());
    }

    /// <summary>
    /// The same terms with each plane's run padded to a multiple of 8 with zero-offset terms on weight 0 (what the generic
    /// weight-gradient kernel needs); the padding gradients are ignored.
    /// </summary>
    public TermTable PaddedToEight()
    {
        var planes = new List<List<(nint, long)>>();
        for (int q = 0; q + 1 < Start.Length; q++)
        {
            var terms = Enumerable.Range(Start[q], Start[q + 1] - Start[q]).Select(i => (Offset[i], WeightIndex[i])).ToList();
            while (terms.Count % 8 != 0)
            {
                terms.Add((0, -1));
            }

            planes.Add(terms);
        }

        return FromTerms(planes);
    }
}
