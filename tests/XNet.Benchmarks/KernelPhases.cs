using System.Diagnostics;
using System.Globalization;
using XNet.Architectures;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

/// <summary>
/// The <c>phases</c> mode: where a direct sparse layer's time goes. For each 3x3 shape, the median milliseconds of the
/// input layout, the forward kernel, the input gradient (with its padding and, when strided, reassembly), the weight
/// gradient, the whole autograd call, and the dense layer's forward + backward beside them.
/// </summary>
internal static class KernelPhases
{
    public static void Run(IReadOnlyList<string> models, double density, int batch, int warmup, int repetitions)
    {
        var shapes = LayerShape.Distinct(models, s => s.Kernel == 3);
        int threads = get_num_threads();
        Console.WriteLine($"phases: batch {batch}, density 1/{1 / density:0}, {threads} threads, median of {repetitions} after {warmup} warm-up");
        Console.WriteLine();
        Console.WriteLine("| layer shape | lay out | forward | input grad | weight grad | sum | autograd call | dense fwd+bwd |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in shapes)
        {
            int degree = ExpanderGraph.DegreeFor(s.Path, s.In, 1 / density);
            var graph = ExpanderGraph.Create(s.Path, s.In, s.Out, 1 / density, 0);
            var plan = new SparseConvPlan(Enumerable.Range(0, s.Out).SelectMany(o => graph.InputsOf(o).ToArray().Select(i => (long)i)).ToArray(), s.In, s.Out, 3, s.Stride, s.Padding, (int)s.Height, (int)s.Width);
            using var x = randn(batch, s.In, s.Height, s.Width);
            using var weight = randn(s.Out, degree, 3, 3);
            using var laidOut = plan.LayOut(x);
            using var upstream = randn(batch, s.Out, plan.OutputHeight, plan.OutputWidth);
            var layer = new ExpanderConv2d(graph, 3, s.Stride, s.Padding)
            {
                Execution = ExpanderExecution.DirectSparse,
            };
            var dense = nn.Conv2d(s.In, s.Out, 3, stride: s.Stride, padding: s.Padding, bias: false);
            using var xg = x.clone().requires_grad_(true);
            var stages = new (string Name, Action Run)[]
            {
                ("lay out", () => plan.LayOut(x).Dispose()),
                ("forward", () => plan.Forward(laidOut, weight, threads).Dispose()),
                ("input grad", () => plan.InputGradient(upstream, weight, threads).Dispose()),
                ("weight grad", () => plan.WeightGradient(laidOut, upstream, threads).Dispose()),
                ("autograd", () => Step(layer, xg)),
                ("dense", () => Step(dense, xg)),
            };
            var times = stages.Select(_ => new List<double>()).ToArray();
            for (int round = 0; round < warmup + repetitions; round++)
            {
                for (int i = 0; i < stages.Length; i++)
                {
                    using var scope = NewDisposeScope();
                    long start = Stopwatch.GetTimestamp();
                    stages[i].Run();
                    if (round >= warmup)
                    {
                        times[i].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                }
            }

            var m = times.Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {m[0]:F2} | {m[1]:F2} | {m[2]:F2} | {m[3]:F2} | {m[0] + m[1] + m[2] + m[3]:F2} | {m[4]:F2} | {m[5]:F2} |"));
            layer.Dispose();
            dense.Dispose();
        }
    }

    private static void Step(nn.Module<Tensor, Tensor> layer, Tensor x)
    {
        layer.zero_grad();
        x.grad?.zero_();
        var y = layer.call(x);
        y.backward(new[] { ones_like(y) });
    }
}
