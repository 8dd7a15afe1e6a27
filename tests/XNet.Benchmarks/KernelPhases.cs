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
/// this machine's peak (measured first: independent multiply-add chains of the widest vectors the kernels use, on one thread).
/// </summary>
internal static class KernelPhases
{
    public static void Run(IReadOnlyList<string> models, double density, int batch, int warmup, int repetitions, ImageShape? input = null,
        int kernel = 3)
    {
        var shapes = LayerShape.Distinct(models, s => s.Kernel == kernel, input);
        int threads = get_num_threads();
        int lanes = Simd.Allow512 ? 16 : 8;
        double peak = PeakMultiplyAdds(lanes);
        string widths = lanes == 16 ? "the kernels use 16 lanes for planes wider than 8" : "no AVX-512: the kernels use 8 lanes";
        Console.WriteLine($"phases: batch {batch}, density 1/{1 / density:0}, {threads} threads, median of {repetitions} after {warmup} warm-up");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peak: {peak:F2} G {lanes}-lane multiply-adds/s on one thread ({peak * threads:F2} on {threads}); {widths}"));
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
            double vectorFmas = (double)batch * s.Out * plan.OutputHeight * plan.OutputWidth * degree * kernel * kernel / lanes;
            double rate = vectorFmas / m[6] / 1e6;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {m[0]:F2} | {m[1]:F2} | {m[2]:F2} | {m[3]:F2} | {m[0] + m[1] + m[2] + m[3]:F2} | {m[4]:F2} | {m[5]:F2} | {m[6]:F2} | {rate:F1} ({rate / (peak * threads):P0}) |"));
            layer.Dispose();
            dense.Dispose();
        }
    }

    /// <summary>G multiply-adds of <paramref name="lanes"/>-lane vectors per second of one thread: 12 independent chains, enough to hide the latency.</summary>
    private static double PeakMultiplyAdds(int lanes)
    {
        Func<long, float> chains = lanes == 16 ? Chains<Simd512, Vector512<float>> : Chains<Simd256, Vector256<float>>;
        chains(1000);
        const long Steps = 100_000_000;
        long start = Stopwatch.GetTimestamp();
        float sink = chains(Steps);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return sink == 0 ? double.NaN : Steps * 12 / seconds / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains<TSimd, TVector>(long steps)
        where TSimd : struct, ISimd<TVector>
        where TVector : struct
    {
        var (m, c) = (TSimd.Broadcast(0.9999f), TSimd.Broadcast(0.0001f));
        TVector a0 = TSimd.Broadcast(1f), a1 = TSimd.Broadcast(1.1f), a2 = TSimd.Broadcast(1.2f), a3 = TSimd.Broadcast(1.3f);
        TVector a4 = TSimd.Broadcast(1.4f), a5 = TSimd.Broadcast(1.5f), a6 = TSimd.Broadcast(1.6f), a7 = TSimd.Broadcast(1.7f);
        TVector a8 = TSimd.Broadcast(1.8f), a9 = TSimd.Broadcast(1.9f), a10 = TSimd.Broadcast(2.0f), a11 = TSimd.Broadcast(2.1f);
        for (long i = 0; i < steps; i++)
        {
            a0 = TSimd.MultiplyAdd(a0, m, c);
            a1 = TSimd.MultiplyAdd(a1, m, c);
            a2 = TSimd.MultiplyAdd(a2, m, c);
            a3 = TSimd.MultiplyAdd(a3, m, c);
            a4 = TSimd.MultiplyAdd(a4, m, c);
            a5 = TSimd.MultiplyAdd(a5, m, c);
            a6 = TSimd.MultiplyAdd(a6, m, c);
            a7 = TSimd.MultiplyAdd(a7, m, c);
            a8 = TSimd.MultiplyAdd(a8, m, c);
            a9 = TSimd.MultiplyAdd(a9, m, c);
            a10 = TSimd.MultiplyAdd(a10, m, c);
            a11 = TSimd.MultiplyAdd(a11, m, c);
        }

        var sum = TSimd.Add(TSimd.Add(TSimd.Add(a0, a1), TSimd.Add(a2, a3)), TSimd.Add(TSimd.Add(a4, a5), TSimd.Add(a6, a7)));
        return TSimd.Sum(TSimd.Add(sum, TSimd.Add(TSimd.Add(a8, a9), TSimd.Add(a10, a11))));
    }
}
