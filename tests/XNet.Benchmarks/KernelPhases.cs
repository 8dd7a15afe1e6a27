using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using XNet.Architectures;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

/// <summary>
/// The <c>phases</c> mode: where a direct sparse layer's time goes. For each 3x3 (or 1x1) shape, the median milliseconds of the
/// input layout, the forward kernel, the input gradient, the weight gradient (each run in turn with the others, as in a
/// training step, so their data come partly from memory), the whole autograd call, and the dense layer's forward +
/// backward; then the forward again, back to back so that its data stay in cache, and its multiply-add rate there against
/// this machine's peak (measured first: independent 16-lane multiply-add chains on one thread).
/// </summary>
internal static class KernelPhases
{
    public static void Run(IReadOnlyList<string> models, double density, int batch, int warmup, int repetitions, ImageShape? input = null,
        int kernel = 3)
    {
        var shapes = LayerShape.Distinct(models, s => s.Kernel == kernel, input);
        int threads = get_num_threads();
        double peak = PeakMultiplyAdds();
        Console.WriteLine($"phases: batch {batch}, density 1/{1 / density:0}, {threads} threads, median of {repetitions} after {warmup} warm-up");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peak: {peak:F2} G 16-lane multiply-adds/s on one thread ({peak * threads:F2} on {threads}); the kernels use 16 lanes for planes wider than 8"));
        Console.WriteLine();
        Console.WriteLine("| layer shape | lay out | forward | input grad | weight grad | sum | autograd call | dense fwd+bwd | forward, repeated | its G FMA/s (of peak) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in shapes)
        {
            int degree = ExpanderGraph.DegreeFor(s.Path, s.In, 1 / density);
            var graph = ExpanderGraph.Create(s.Path, s.In, s.Out, 1 / density, 0);
            var plan = new SparseConvPlan(Enumerable.Range(0, s.Out).SelectMany(o => graph.InputsOf(o).ToArray().Select(i => (long)i)).ToArray(), s.In, s.Out, kernel, s.Stride, s.Padding, (int)s.Height, (int)s.Width);
            using var x = randn(batch, s.In, s.Height, s.Width);
            using var weight = randn(s.Out, degree, kernel, kernel);
            using var laidOut = plan.LayOut(x, threads);
            using var upstream = randn(batch, s.Out, plan.OutputHeight, plan.OutputWidth);
            var layer = new ExpanderConv2d(graph, kernel, s.Stride, s.Padding)
            {
                Execution = ExpanderExecution.DirectSparse,
            };
            var dense = nn.Conv2d(s.In, s.Out, kernel, stride: s.Stride, padding: s.Padding, bias: false);
            using var sparsePass = new LayerPass(layer, x);
            using var densePass = new LayerPass(dense, x);
            var stages = new (string Name, Action Run)[]
            {
                ("lay out", () => plan.LayOut(x, threads).Dispose()),
                ("forward", () => plan.Forward(laidOut, weight, threads).Dispose()),
                ("input grad", () => plan.InputGradient(upstream, weight, threads).Dispose()),
                ("weight grad", () => plan.WeightGradient(laidOut, upstream, threads).Dispose()),
                ("autograd", sparsePass.Run),
                ("dense", densePass.Run),
            };
            var times = InterleavedRounds.Time(stages.Select(stage => stage.Run).ToList(), warmup, repetitions);

            // The forward again, back to back, so that its input and output stay in cache.
            var repeated = InterleavedRounds.Time(new Action[] { () => plan.Forward(laidOut, weight, threads).Dispose() }, warmup, repetitions)[0];

            var m = times.Append(repeated).Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
            double vectorFmas = (double)batch * s.Out * plan.OutputHeight * plan.OutputWidth * degree * kernel * kernel / 16;
            double rate = vectorFmas / m[6] / 1e6;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {m[0]:F2} | {m[1]:F2} | {m[2]:F2} | {m[3]:F2} | {m[0] + m[1] + m[2] + m[3]:F2} | {m[4]:F2} | {m[5]:F2} | {m[6]:F2} | {rate:F1} ({rate / (peak * threads):P0}) |"));
            layer.Dispose();
            dense.Dispose();
        }
    }

    /// <summary>G 16-lane multiply-adds per second of one thread: 12 independent chains, enough to hide the latency.</summary>
    private static double PeakMultiplyAdds()
    {
        if (!Avx512F.IsSupported)
        {
            return double.NaN;
        }

        Chains(1000);
        const long Steps = 100_000_000;
        long start = Stopwatch.GetTimestamp();
        float sink = Chains(Steps);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return sink == 0 ? double.NaN : Steps * 12 / seconds / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(long steps)
    {
        var m = Vector512.Create(0.9999f);
        var c = Vector512.Create(0.0001f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0 * 1.1f, a2 = a0 * 1.2f, a3 = a0 * 1.3f, a4 = a0 * 1.4f, a5 = a0 * 1.5f;
        Vector512<float> a6 = a0 * 1.6f, a7 = a0 * 1.7f, a8 = a0 * 1.8f, a9 = a0 * 1.9f, a10 = a0 * 2.0f, a11 = a0 * 2.1f;
        for (long i = 0; i < steps; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c);
            a1 = Avx512F.FusedMultiplyAdd(a1, m, c);
            a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, c);
            a4 = Avx512F.FusedMultiplyAdd(a4, m, c);
            a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, c);
            a7 = Avx512F.FusedMultiplyAdd(a7, m, c);
            a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
            a10 = Avx512F.FusedMultiplyAdd(a10, m, c);
            a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
        }

        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).ToScalar();
    }
}
