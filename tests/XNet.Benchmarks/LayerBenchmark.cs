using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using XNet.Architectures;
using XNet.Architectures.Graphs;
using XNet.Architectures.Layers;
using XNet.MLNet.Training;
using static TorchSharp.torch;

/// <summary>
/// The <c>layers</c> mode: forward + backward time of one convolution per form at the expander-layer shapes of zoo models and
/// several densities, each reported as a speed-up over the dense layer measured in the same run and as an efficiency
/// (density x dense time / form time; 100 % is the physical limit of skipping absent connections). The <c>models</c> mode:
/// whole-model training images/s on synthetic batches, each model against the first one named (its dense twin).
/// </summary>
internal static class LayerBenchmark
{
    /// <summary>Every form the layer mode knows; <c>paper-grouped</c> (gather + C_out groups) is known to be slow and is opt-in.</summary>
    public static readonly string[] AllForms = { "dense", "masked", "reference", "direct", "s-r1", "s-r2", "s-r3", "s-r4", "gather-matmul", "paper-grouped" };

    public static readonly string[] DefaultForms = { "dense", "masked", "reference", "direct", "s-r1", "s-r2", "s-r4", "gather-matmul" };

    public static void Layers(IReadOnlyList<string> models, IReadOnlyList<double> densities, IReadOnlyList<string> forms, int batch,
        int warmup, int repetitions, int kernelFilter)
    {
        var unknown = forms.Except(AllForms).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"Unknown forms {string.Join(", ", unknown)}; known: {string.Join(", ", AllForms)}.");
        }

        var shapes = LayerShape.Distinct(models, s => kernelFilter == 0 || s.Kernel == kernelFilter);
        Console.WriteLine($"layers: batch {batch}, {warmup} warm-up + median of {repetitions} timed fwd+bwd passes per form, " +
                          $"{shapes.Count} shapes, densities {string.Join(", ", densities.Select(d => $"1/{1 / d:0}"))}, forms {string.Join(", ", forms)}");
        Console.WriteLine("speed-up = dense time / form time; efficiency = density x dense time / form time.");
        Console.WriteLine();
        Console.WriteLine("| model | layer shape | density | form | G | ms | speed-up | efficiency |");
        Console.WriteLine("|---|---|---|---|---:|---:|---:|---:|");
        var results = new List<(LayerShape Shape, double Density, string Form, double SpeedUp, double Efficiency)>();
        foreach (var shape in shapes)
        {
            // Every form of a shape is timed in the same rounds (one pass of each per round, in turn), so that drift in the
            // machine's speed (another process, frequency, the JIT's tiers) lands on all of them alike.
            var entries = new List<(double Density, string Form, int Groups, nn.Module<Tensor, Tensor> Module)> { (1, "dense", 1, DenseLayer(shape)) };
            foreach (double density in densities.Where(d => 1 / d <= shape.In))
            {
                foreach (string form in forms.Where(f => f != "dense"))
                {
                    if (Build(shape, 1 / density, form) is { } layer)
                    {
                        entries.Add((density, form, layer.Groups, layer.Module));
                    }
                }
            }

            var times = TimeInRounds(shape, batch, warmup, repetitions, entries.Select(e => e.Module).ToList());
            double dense = times[0];
            for (int i = 0; i < entries.Count; i++)
            {
                var (density, form, groups, module) = entries[i];
                module.Dispose();
                if (i == 0)
                {
                    Console.WriteLine($"| {shape.Model} | {shape.Label} | 1 | dense | 1 | {dense:F2} | 1.00 | |");
                    continue;
                }

                double e = 1 / density;
                double actualDensity = (double)ExpanderGraph.DegreeFor(shape.Path, shape.In, e) / shape.In;
                double speedUp = dense / times[i], efficiency = actualDensity * dense / times[i];
                results.Add((shape, density, form, speedUp, efficiency));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {shape.Model} | {shape.Label} | 1/{e:0} | {form} | {groups} | {times[i]:F2} | {speedUp:F2} | {efficiency:P0} |"));
            }
        }

        Console.WriteLine();
        Console.WriteLine("Summary over the shapes above, by kernel size: median speed-up, slowest shape, median efficiency.");
        Console.WriteLine();
        Console.WriteLine("| kernel | density | form | median speed-up | min speed-up | median efficiency | shapes |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|");
        foreach (var group in results.GroupBy(r => (r.Shape.Kernel, r.Density, r.Form)).OrderBy(g => g.Key.Kernel))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {group.Key.Kernel}x{group.Key.Kernel} | 1/{1 / group.Key.Density:0} | {group.Key.Form} | {ModelSpeed.Median(group.Select(r => r.SpeedUp)):F2} | " +
                $"{group.Min(r => r.SpeedUp):F2} | {ModelSpeed.Median(group.Select(r => r.Efficiency)):P0} | {group.Count()} |"));
        }
    }

    /// <summary>
    /// The median over a model's distinct layer shapes of one kernel size of the direct kernel's speed-up over the dense
    /// layer (forward and backward, the two taking turns in each round): the per-layer figure of the speed goals.
    /// </summary>
    public static double MedianDirectSpeedUp(string model, int kernel, double density, int batch, int warmup, int repetitions)
    {
        var speedUps = new List<double>();
        foreach (var shape in LayerShape.Distinct([model], s => s.Kernel == kernel))
        {
            using var dense = DenseLayer(shape);
            using var direct = Build(shape, 1 / density, "direct")!.Value.Module;
            var times = TimeInRounds(shape, batch, warmup, repetitions, [dense, direct]);
            speedUps.Add(times[0] / times[1]);
        }

        return speedUps.Count == 0 ? throw new ArgumentException($"{model} has no {kernel}x{kernel} expander layers.")
            : ModelSpeed.Median(speedUps);
    }

    /// <summary>
    /// Training images/s (forward, cross-entropy, backward, SGD step) of each model on synthetic batches at its reference
    /// input. The models take turns, a few steps each per round, so that drift in the machine's speed and the process's
    /// warm-up land on all of them alike.
    /// </summary>
    public static void Models(IReadOnlyList<string> models, int batch, int warmup, int batches, int? side = null, int? classes = null)
    {
        const int StepsPerTurn = 5;
        int rounds = Math.Max(1, batches / StepsPerTurn);
        Console.WriteLine($"models: batch {batch}, {warmup} warm-up steps each, then {rounds} rounds of {StepsPerTurn} timed training steps per " +
                          $"model on synthetic data{(side is null ? "" : $" of 3x{side}x{side}")}; ratio to {models[0]}");
        Console.WriteLine("(a name may end in @reference, @grouped or @direct to force every expander layer's execution)");
        Console.WriteLine();
        var runs = models.Select(entry => new ModelRun(entry, batch, side, classes)).ToList();
        try
        {
            runs.ForEach(r => r.Steps(warmup));
            var elapsed = new double[runs.Count];
            for (int round = 0; round < rounds; round++)
            {
                for (int i = 0; i < runs.Count; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    runs[i].Steps(StepsPerTurn);
                    elapsed[i] += Stopwatch.GetElapsedTime(start).TotalSeconds;
                }
            }

            Console.WriteLine("| model | expander layers by execution | img/s | vs first |");
            Console.WriteLine("|---|---|---:|---:|");
            double first = batch * rounds * StepsPerTurn / elapsed[0];
            for (int i = 0; i < runs.Count; i++)
            {
                double perSecond = batch * rounds * StepsPerTurn / elapsed[i];
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {runs[i].Entry} | {runs[i].Executions} | {perSecond:F0} | {perSecond / first:F2} |"));
            }
        }
        finally
        {
            runs.ForEach(r => r.Dispose());
        }
    }

    /// <summary>One model of the <c>models</c> mode with its optimizer and synthetic batch.</summary>
    private sealed class ModelRun : IDisposable
    {
        private readonly nn.Module<Tensor, Tensor> network;
        private readonly optim.Optimizer optimizer;
        private readonly Tensor images;
        private readonly Tensor labels;

        public ModelRun(string entry, int batch, int? side, int? classes)
        {
            Entry = entry;
            string name = entry.Split('@')[0];
            var family = ModelZoo.FamilyOf(name);
            var input = side is int s ? new ImageShape(3, s, s) : family.Input;
            int classCount = classes ?? family.Classes;
            manual_seed(0);
            network = ModelZoo.Create(name, input, classCount, seed: 0);
            var expanders = network.modules().OfType<ExpanderConv2d>().ToList();
            if (entry.Contains('@'))
            {
                var forced = entry.Split('@')[1] switch
                {
                    "reference" => ExpanderExecution.Reference,
                    "grouped" => ExpanderExecution.BlockGrouped,
                    "direct" => ExpanderExecution.DirectSparse,
                    var other => throw new ArgumentException($"Unknown execution '@{other}' in '{entry}': use @reference, @grouped or @direct."),
                };
                expanders.ForEach(l => l.Execution = forced);
            }

            Executions = expanders.Count == 0
                ? "none"
                : string.Join(", ", expanders.GroupBy(l => l.ResolvedExecution).Select(g => $"{g.Count()} {g.Key}"));
            network.train();
            optimizer = optim.SGD(network.parameters(), 0.01, momentum: 0.9);
            images = randn(batch, input.Channels, input.Height, input.Width);
            labels = randint(classCount, new long[] { batch }, dtype: ScalarType.Int64);
        }

        public string Entry { get; }

        public string Executions { get; }

        public void Steps(int count)
        {
            for (int step = 0; step < count; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(network.call(images), labels);
                loss.backward();
                optimizer.step();
            }
        }

        public void Dispose()
        {
            optimizer.Dispose();
            network.Dispose();
            images.Dispose();
            labels.Dispose();
        }
    }

    private static (nn.Module<Tensor, Tensor> Module, int Groups)? Build(LayerShape s, double e, string form)
    {
        switch (form)
        {
            case "masked":
                return (new MaskedConv(s, ExpanderGraph.Create(s.Path, s.In, s.Out, e, 0)), 1);
            case "reference":
            case "direct":
            case "paper-grouped":
            case "gather-matmul":
            {
                if (form == "gather-matmul" && (s.Kernel != 1 || s.Padding != 0))
                {
                    return null;
                }

                var layer = new ExpanderConv2d(s.Path, s.In, s.Out, s.Kernel, e, 0, s.Stride, s.Padding)
                {
                    Execution = form switch
                    {
                        "reference" => ExpanderExecution.Reference,
                        "direct" => ExpanderExecution.DirectSparse,
                        "paper-grouped" => ExpanderExecution.BlockGrouped,
                        _ => ExpanderExecution.GatherMatmul,
                    },
                };
                return (layer, form == "paper-grouped" ? s.Out : 1);
            }

            default: // s-rN
            {
                int copies = int.Parse(form[3..], CultureInfo.InvariantCulture);
                var graph = ExpanderGraph.CreateStructured(s.Path, s.In, s.Out, e, 0, copies);
                if (graph.BlockCount == s.Out || ExpanderGraph.StructuredCopiesFor(s.In, s.Out, graph.Degree, copies) != copies)
                {
                    return null; // this shape lowers r or has no structured graph: the row would duplicate another
                }

                return (new ExpanderConv2d(graph, s.Kernel, s.Stride, s.Padding) { Execution = ExpanderExecution.BlockGrouped }, graph.BlockCount);
            }
        }
    }

    private static nn.Module<Tensor, Tensor> DenseLayer(LayerShape s) =>
        nn.Conv2d(s.In, s.Out, s.Kernel, stride: s.Stride, padding: s.Padding, bias: false);

    /// <summary>
    /// Median milliseconds of forward + backward (input and weight gradients, <see cref="LayerPass"/>) for one batch, per
    /// layer, the layers taking turns within each round.
    /// </summary>
    private static double[] TimeInRounds(LayerShape s, int batch, int warmup, int repetitions, IReadOnlyList<nn.Module<Tensor, Tensor>> layers)
    {
        using var x = randn(batch, s.In, s.Height, s.Width);
        var passes = layers.Select(layer => new LayerPass(layer, x)).ToList();
        var times = InterleavedRounds.Time(passes.Select(p => (Action)p.Run).ToList(), warmup, repetitions);
        passes.ForEach(p => p.Dispose());
        return times.Select(ModelSpeed.Median).ToArray();
    }

    /// <summary>The paper code's form: a dense weight times a 0/1 mask, then a dense convolution.</summary>
    private sealed class MaskedConv : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Parameter weight;
        private readonly Tensor mask;
        private readonly long[] stride;
        private readonly long[] padding;

        public MaskedConv(LayerShape s, ExpanderGraph graph)
            : base(nameof(MaskedConv))
        {
            weight = new TorchSharp.Modules.Parameter(randn(s.Out, s.In, s.Kernel, s.Kernel) * 0.1);
            mask = graph.ToMask().view(s.Out, s.In, 1, 1);
            stride = new long[] { s.Stride, s.Stride };
            padding = new long[] { s.Padding, s.Padding };
            register_parameter(nameof(weight), weight);
            register_buffer(nameof(mask), mask);
        }

        public override Tensor forward(Tensor input)
        {
            using var masked = weight * mask;
            return nn.functional.conv2d(input, masked, null, stride, padding);
        }
    }
}
