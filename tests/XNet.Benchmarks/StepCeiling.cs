using System.Globalization;
using XNet.Architectures;
using XNet.Architectures.Layers;
using XNet.MLNet.Training;
using static TorchSharp.torch;

/// <summary>
/// The <c>ceiling</c> mode: how fast an X-Net's training step could be against its dense twin's if its expander layers ran
/// at their density limit and nothing else changed. It measures both whole steps in turns (<see cref="ModelSpeed"/>),
/// then each expander layer of the X-Net and a dense convolution of the same shape alone (forward + backward, in turns),
/// and splits each step into those layers and the rest (stem, shortcut projections, batch norms, pooling, classifier,
/// loss, optimiser, dispatch), which is the same work in both models.
/// </summary>
/// <remarks>
/// The ceiling is twin step / (X-Net's rest + each layer's dense time x its density): a layer cannot run faster than its
/// dense twin by more than the MACs it skips. A speed goal above the ceiling is out of reach of any kernel for the
/// expander layers; it would need the rest to be faster too. Layers timed alone, in turns with the other form, do not
/// see the step's exact cache state and the two measurements are minutes apart, so the split is an estimate; a rest
/// below zero means the machine changed speed in between: run again.
/// </remarks>
internal static class StepCeiling
{
    public static void Run(string model, ImageShape input, int classes, int batch, int rounds, int steps, int repetitions, double? goal)
    {
        string twin = ModelZoo.DenseTwinOf(model);
        using var x = new ModelSpeed(model, input, classes, batch, CPU);
        using var dense = new ModelSpeed(twin, input, classes, batch, CPU);
        ModelSpeed.InTurns([x, dense], rounds, steps);

        double stepX = batch * 1000 / ModelSpeed.Median(x.Training), stepTwin = batch * 1000 / ModelSpeed.Median(dense.Training);

        // Every expander layer as the model holds it (its graph and execution), and a dense convolution in its place.
        using var network = ModelZoo.Create(model, input, classes, seed: 0);
        var modules = network.named_modules().ToDictionary(m => m.name, m => m.module);
        double sparseMs = 0, denseMs = 0, limitMs = 0;
        Console.WriteLine($"ceiling: {model} against {twin}, {input.Channels}x{input.Height}x{input.Width}, batch {batch}, " +
                          $"steps: median of {rounds} rounds of {steps}; layers: median of {repetitions} forward + backward passes alone");
        Console.WriteLine();
        Console.WriteLine("| expander layer | count | density | X-Net ms | dense ms | speed-up |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var group in LayerShape.Of(model, input).GroupBy(s => (s.Key, s.Degree)))
        {
            var s = group.First();
            var layer = (ExpanderConv2d)modules[s.Path];
            using var conv = nn.Conv2d(s.In, s.Out, s.Kernel, stride: s.Stride, padding: s.Padding, bias: false);
            using var image = randn(batch, s.In, s.Height, s.Width);
            using var sparsePass = new LayerPass(layer, image);
            using var densePass = new LayerPass(conv, image);
            var times = InterleavedRounds.Time(new Action[] { sparsePass.Run, densePass.Run }, warmup: 10, repetitions)
                .Select(t => ModelSpeed.Median(t)).ToArray();
            double density = (double)s.Degree / s.In;
            sparseMs += group.Count() * times[0];
            denseMs += group.Count() * times[1];
            limitMs += group.Count() * times[1] * density;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {group.Count()} | 1/{1 / density:0.#} | {times[0]:F2} | {times[1]:F2} | {times[1] / times[0]:F2}x |"));
        }

        double restX = stepX - sparseMs, restTwin = stepTwin - denseMs, ceiling = stepTwin / (restX + limitMs);
        Console.WriteLine();
        Console.WriteLine("| | training step ms | of it: the expander layers (alone) | the rest |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {model} | {stepX:F1} | {sparseMs:F1} | {restX:F1} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {twin} | {stepTwin:F1} | {denseMs:F1} (dense) | {restTwin:F1} |"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step ratio measured {stepTwin / stepX:F2}x; the expander layers at {denseMs / sparseMs:F2}x their dense form; " +
            $"ceiling with every expander layer at its density limit ({denseMs / limitMs:F2}x) and the rest as measured: {ceiling:F2}x"));
        if (goal is double g)
        {
            double layersBudget = stepTwin / g - restX;
            Console.WriteLine(layersBudget <= 0
                ? FormattableString.Invariant($"goal {g:0.##}x: out of reach of the expander layers: the rest alone ({restX:F1} ms) is more than {stepTwin:F1} / {g:0.##} ms")
                : FormattableString.Invariant($"goal {g:0.##}x: the expander layers would need {denseMs / layersBudget:F2}x their dense form (limit {denseMs / limitMs:F2}x){(ceiling < g ? ": above the limit, out of reach" : "")}"));
        }
    }
}
