using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using XNet.Architectures;
using XNet.Architectures.Layers;
using XNet.MLNet.Training;
using static TorchSharp.torch;

/// <summary>
/// The <c>profile</c> mode: where a whole training step goes, per model. Each step is timed by phase (augmentation of the
/// batch, zero_grad, forward, loss, backward, optimiser step) and its forward pass by op class through forward hooks
/// (expander convolutions, dense convolutions, the batch norm and activation of each conv unit, the rest of the
/// forward pass) with <c>--split</c>. The split's hooks on the expander convolutions make their units run apart (a unit
/// trains as one function only where its convolution has no hooks), so without <c>--split</c> no hooks are set, the step is
/// the one training runs, and the op-class columns are empty. Medians of the per-step milliseconds over the timed steps; the backward pass is one figure.
/// </summary>
internal static class StepProfile
{
    public static void Run(IReadOnlyList<string> models, ImageShape input, int classes, int batch, int warmup, int steps, bool split)
    {
        Console.WriteLine($"profile: {input}, {classes} classes, batch {batch}, {warmup} warm-up steps, median ms of {steps} timed steps, {get_num_threads()} threads");
        Console.WriteLine();
        Console.WriteLine("| model | augment | zero_grad | forward | of it: expander convs | dense convs | BN + activation | rest | loss | backward | optimiser | step | images/s |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string name in models)
        {
            Profile(name, input, classes, batch, warmup, steps, split);
        }
    }

    private static void Profile(string name, ImageShape input, int classes, int batch, int warmup, int steps, bool split)
    {
        manual_seed(0);
        using var network = ModelZoo.Create(name, input, classes, seed: 0);
        using var optimizer = new KeptScalarOptimizers.SGD(network.parameters(), 0.1, 0.9, dampening: 0, 5e-4, nesterov: true);
        using var images = rand(batch, input.Channels, input.Height, input.Width) * 255;
        using var labels = randint(classes, new long[] { batch });
        var random = new Random(0);
        long[] rows = new long[batch], columns = new long[batch];
        bool[] flips = new bool[batch];

        // Forward time by op class: a pre-hook starts each module's clock, its post-hook adds the elapsed time. A conv unit
        // (convolution, batch norm, activation) adds its time less that of the convolution inside it.
        double expander = 0, dense = 0, unitRest = 0;
        var started = new Dictionary<nn.Module, (long At, double Convolutions)>();
        foreach (var module in split ? network.modules().OfType<nn.Module<Tensor, Tensor>>() : [])
        {
            if (module is not (ExpanderConv2d or Conv2dNormActivation or TorchSharp.Modules.Conv2d))
            {
                continue;
            }

            module.register_forward_pre_hook((m, x) =>
            {
                started[m] = (Stopwatch.GetTimestamp(), expander + dense);
                return x;
            });
            module.register_forward_hook((m, x, y) =>
            {
                var (at, convolutionsBefore) = started[m];
                double ms = Stopwatch.GetElapsedTime(at).TotalMilliseconds;
                switch (m)
                {
                    case ExpanderConv2d: expander += ms; break;
                    case Conv2dNormActivation: unitRest += ms - (expander + dense - convolutionsBefore); break;
                    default: dense += ms; break;
                }

                return y;
            });
        }

        var phases = new[] { "augment", "zero_grad", "forward", "expander", "dense", "bn", "rest", "loss", "backward", "optimiser", "step" }
            .ToDictionary(p => p, _ => new List<double>());
        network.train();
        for (int step = 0; step < warmup + steps; step++)
        {
            for (int i = 0; i < batch; i++)
            {
                (rows[i], columns[i], flips[i]) = (random.Next(5), random.Next(5), random.Next(2) == 1);
            }

            (expander, dense, unitRest) = (0, 0, 0);
            using var scope = NewDisposeScope();
            long begin = Stopwatch.GetTimestamp(), mark = begin;
            double Lap()
            {
                long now = Stopwatch.GetTimestamp();
                double ms = Stopwatch.GetElapsedTime(mark, now).TotalMilliseconds;
                mark = now;
                return ms;
            }

            var x = Augmentation.CropAndFlip(images, 2, rows, columns, flips);
            double augment = Lap();
            optimizer.zero_grad();
            double zeroGrad = Lap();
            var logits = network.call(x);
            double forward = Lap();
            var loss = nn.functional.cross_entropy(logits, labels);
            loss.item<float>();
            double lossTime = Lap();
            loss.backward();
            double backward = Lap();
            optimizer.step();
            double optimiser = Lap();
            if (step < warmup)
            {
                continue;
            }

            foreach (var (phase, ms) in new[]
                     {
                         ("augment", augment), ("zero_grad", zeroGrad), ("forward", forward), ("expander", expander), ("dense", dense),
                         ("bn", unitRest), ("rest", forward - expander - dense - unitRest), ("loss", lossTime), ("backward", backward),
                         ("optimiser", optimiser), ("step", Stopwatch.GetElapsedTime(begin).TotalMilliseconds),
                     })
            {
                phases[phase].Add(ms);
            }
        }

        double Median(string phase) => phases[phase].Order().ElementAt(phases[phase].Count / 2);
        string Cell(string phase) => !split && phase is "expander" or "dense" or "bn" or "rest" ? "" : Median(phase).ToString("F1", CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {string.Join(" | ", phases.Keys.Select(Cell))} | {batch * 1000 / Median("step"):F0} |"));
    }
}
