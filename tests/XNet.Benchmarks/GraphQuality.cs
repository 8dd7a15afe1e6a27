using System.Globalization;
using XNet.Architectures.Graphs;

/// <summary>
/// The <c>graphs</c> mode: for each distinct expander-layer shape of a few zoo models, the spectral gap (1 - sigma2 / sigma1 of
/// the C_out x C_in biadjacency, <see cref="ExpanderGraph.SpectralGap"/>) of the paper's random graph, the structured family at
/// r = 1..4, the block-diagonal graph of a grouped convolution at the same density, and the Ramanujan reference for the
/// layer's degrees. Deterministic (seed 0, the layer's own path).
/// </summary>
internal static class GraphQuality
{
    public static void Run(IReadOnlyList<string> models)
    {
        Console.WriteLine("Spectral gap 1 - sigma2/sigma1 (higher is better connected; 0 = disconnected). Seed 0, each shape's first layer path.");
        Console.WriteLine("s-rN: structured family with N permutations (G = N C_in / D blocks); '(r=M)' where the shape lowers r, 'paper' where it falls back.");
        Console.WriteLine("block-diag: grouped convolution with C_in / D groups. Ramanujan: 1 - (sqrt(D-1) + sqrt(d_in-1)) / sqrt(D d_in), d_in = C_out D / C_in.");
        Console.WriteLine("Ramanujan blocks r=2: the same bound for the (D, 2)-biregular block graph (inputs x blocks), whose gap the structured graph shares.");
        Console.WriteLine();
        foreach (string model in models)
        {
            var shapes = LayerShape.Of(model).DistinctBy(s => (s.In, s.Out, s.Kernel)).ToList();
            Console.WriteLine($"### {model} ({shapes.Count} distinct expander-layer shapes)");
            Console.WriteLine();
            Console.WriteLine("| layer (first of its shape) | C_in -> C_out, k | D | paper | s-r1 | s-r2 | s-r3 | s-r4 | block-diag | Ramanujan | Ramanujan blocks r=2 |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var s in shapes)
            {
                double e = (double)s.In / s.Degree;
                var paper = ExpanderGraph.Create(s.Path, s.In, s.Out, e, seed: 0);
                var structured = Enumerable.Range(1, 4).Select(r => Structured(s, e, r));
                int groups = s.In / s.Degree;
                string block = s.In % s.Degree == 0 && s.Out % groups == 0
                    ? Gap(ExpanderGraph.CreateBlockDiagonal(s.Path, s.In, s.Out, groups).SpectralGap())
                    : "-";
                double ramanujan = ExpanderGraph.RamanujanGap(s.Degree, (double)s.Out * s.Degree / s.In);
                Console.WriteLine($"| {s.Path} | {s.In} -> {s.Out}, {s.Kernel}x{s.Kernel} | {s.Degree} | {Gap(paper.SpectralGap())} | " +
                                  $"{string.Join(" | ", structured)} | {block} | {Gap(ramanujan)} | {Gap(ExpanderGraph.RamanujanGap(s.Degree, 2))} |");
            }

            Console.WriteLine();
        }
    }

    private static string Structured(LayerShape s, double e, int copies)
    {
        int r = ExpanderGraph.StructuredCopiesFor(s.In, s.Out, s.Degree, copies);
        if (r == 0)
        {
            return "paper";
        }

        string gap = Gap(ExpanderGraph.CreateStructured(s.Path, s.In, s.Out, e, seed: 0, copies).SpectralGap());
        return r == copies ? gap : $"{gap} (r={r})";
    }

    private static string Gap(double gap) => gap.ToString("0.000", CultureInfo.InvariantCulture);
}
