using System.Diagnostics;
using System.Globalization;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Training;
using static TorchSharp.torch;

/// <summary>
/// The <c>acceptance</c> mode: the speed goals of X-Nets against their dense twins, each a ratio measured side by side in
/// one run (the models taking turns), repeated for several runs; a goal holds when the median of its runs reaches its
/// threshold. Prints every run's ratio and the verdict, and exits with 1 when a goal is missed.
/// </summary>
internal static class SpeedAcceptance
{
    /// <summary>One goal: what is measured, the threshold its median must reach, and the measurement that gives one ratio.</summary>
    private sealed record Goal(string Group, string Name, double Threshold);

    private static readonly Goal[] Goals =
    [
        new("training", "training, full Fashion-MNIST, batch 128: x-resnet-20-4 / resnet-20", 2.5),
        new("training", "training, full Fashion-MNIST, batch 128: x-resnet-20-8 / resnet-20", 3.5),
        new("photo-layers", "x-resnet-50-4 at 224 px, batch 16: median speed-up of the 3x3 layers (forward + backward)", 2.5),
        new("photo-layers", "x-resnet-50-4 at 224 px, batch 16: median speed-up of the 1x1 layers (forward + backward)", 1.8),
        new("photo-step", "training step at 3x128x128, batch 32: x-resnet-50-2 / resnet-50", 1.6),
        new("scoring", "TorchSharp scoring at 1x28x28, batch 128: x-resnet-20-4 / resnet-20", 2.5),
        new("onnx", "ML.NET Model.Load (ONNX) batch scoring, 2,000 rows: x-resnet-20-4 / resnet-20", 1.0),
        new("onnx", "ML.NET Model.Load (ONNX) PredictionEngine, one image: resnet-20's latency / x-resnet-20-4's", 1.0),
    ];

    public static readonly string[] Groups = Goals.Select(g => g.Group).Distinct().ToArray();

    public static int Run(string data, IReadOnlyCollection<string> groups, int runs)
    {
        if (runs < 1)
        {
            throw new ArgumentException($"--runs must be 1 or more, got {runs}.");
        }

        var unknown = groups.Except(Groups).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"--goals: unknown {string.Join(", ", unknown)}; known: {string.Join(", ", Groups)}.");
        }

        var measured = Goals.Where(g => groups.Contains(g.Group)).ToDictionary(g => g, _ => new List<double>());
        var train = groups.Contains("training") ? FullFashionMnist.Load(data, "train") : null;
        Console.WriteLine($"acceptance: {string.Join(", ", groups)}; {runs} runs, each ratio measured side by side in one run");
        for (int run = 1; run <= runs; run++)
        {
            foreach (string group in Groups.Where(groups.Contains))
            {
                long start = Stopwatch.GetTimestamp();
                double[] ratios = Measure(group, train);
                var goals = Goals.Where(g => g.Group == group).ToArray();
                for (int i = 0; i < goals.Length; i++)
                {
                    measured[goals[i]].Add(ratios[i]);
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"run {run}, {group} ({Stopwatch.GetElapsedTime(start).TotalSeconds:F0} s, {DateTime.UtcNow:HH:mm} UTC): {string.Join(", ", ratios.Select(r => $"{r:F2}x"))}"));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| goal | runs | median | threshold | holds |");
        Console.WriteLine("|---|---|---:|---:|---|");
        int missed = 0;
        foreach (var (goal, ratios) in measured)
        {
            double median = ModelSpeed.Median(ratios);
            bool holds = median >= goal.Threshold;
            missed += holds ? 0 : 1;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {goal.Name} | {string.Join(", ", ratios.Select(r => r.ToString("F2", CultureInfo.InvariantCulture)))} | {median:F3}x | {goal.Threshold:F1}x | {(holds ? "yes" : "NO")} |"));
        }

        Console.WriteLine();
        Console.WriteLine(missed == 0 ? "Every goal holds." : $"{missed} of {measured.Count} goals missed.");
        return missed == 0 ? 0 : 1;
    }

    /// <summary>One run of a group's measurement: one ratio per goal of the group, in the order of <see cref="Goals"/>.</summary>
    private static double[] Measure(string group, ImageSet? train) => group switch
    {
        "training" => TrainingRatios(train!, "resnet-20", ["x-resnet-20-4", "x-resnet-20-8"], batchSize: 128, rounds: 5, batches: 8),
        "photo-layers" =>
        [
            LayerBenchmark.MedianDirectSpeedUp("x-resnet-50-4", kernel: 3, density: 0.25, batch: 16, warmup: 3, repetitions: 15),
            LayerBenchmark.MedianDirectSpeedUp("x-resnet-50-4", kernel: 1, density: 0.25, batch: 16, warmup: 3, repetitions: 15),
        ],
        "photo-step" => [SyntheticRatio("x-resnet-50-2", "resnet-50", new ImageShape(3, 128, 128), 1000, 32, rounds: 3, steps: 2).Training],
        "scoring" => [SyntheticRatio("x-resnet-20-4", "resnet-20", new ImageShape(1, 28, 28), 10, 128, rounds: 5, steps: 5).Scoring],
        "onnx" => OnnxRatios("x-resnet-20-4", "resnet-20"),
        _ => throw new ArgumentOutOfRangeException(nameof(group), group, null),
    };

    /// <summary>
    /// Training images/s through the trainer's engine (its batch loader, augmentation and optimiser) on the real training
    /// set: in each round every model trains <paramref name="batches"/> timed batches after two untimed ones, in turn; the
    /// ratio of each X-Net to the twin is the median of the rounds' ratios.
    /// </summary>
    private static double[] TrainingRatios(ImageSet train, string twin, string[] models, int batchSize, int rounds, int batches)
    {
        var names = models.Prepend(twin).ToArray();
        var classifiers = names.Select(name => FullFashionMnist.Classifier(name, train, 0)).ToArray();
        try
        {
            var engines = classifiers.Select(c => new TrainingEngine(c.Network, new XNetTrainer.Options { Epoch = 1, BatchSize = batchSize }, CPU)).ToArray();
            var perSecond = names.Select(_ => new List<double>()).ToArray();
            for (int round = 0; round < rounds; round++)
            {
                for (int i = 0; i < engines.Length; i++)
                {
                    perSecond[i].Add(batchSize * batches / TimeBatches(engines[i], train, untimed: 2, batches));
                }
            }

            return models.Select((_, i) => ModelSpeed.MedianRatio(perSecond[i + 1], perSecond[0])).ToArray();
        }
        finally
        {
            Array.ForEach(classifiers, c => c.Dispose());
        }
    }

    /// <summary>Seconds of <paramref name="batches"/> training batches after <paramref name="untimed"/> ones (the loader's start).</summary>
    private static double TimeBatches(TrainingEngine engine, ImageSet train, int untimed, int batches)
    {
        long start = 0, end = 0;
        using var stop = new CancellationTokenSource();
        void Completed(BatchProgress progress)
        {
            if (progress.Batch == untimed)
            {
                start = Stopwatch.GetTimestamp();
            }
            else if (progress.Batch == untimed + batches)
            {
                end = Stopwatch.GetTimestamp();
                stop.Cancel();
            }
        }

        engine.BatchCompleted += Completed;
        try
        {
            engine.Fit(train, null, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            engine.BatchCompleted -= Completed;
        }

        return end > start ? Stopwatch.GetElapsedTime(start, end).TotalSeconds
            : throw new InvalidOperationException($"The training set has fewer than {untimed + batches} batches.");
    }

    /// <summary>The median per-round training and scoring ratios of two models on a synthetic batch (<see cref="ModelSpeed"/>).</summary>
    private static (double Training, double Scoring) SyntheticRatio(string model, string twin, ImageShape input, int classes, int batchSize,
        int rounds, int steps)
    {
        using var x = new ModelSpeed(model, input, classes, batchSize, CPU);
        using var dense = new ModelSpeed(twin, input, classes, batchSize, CPU);
        ModelSpeed.InTurns([x, dense], rounds, steps);

        return (ModelSpeed.MedianRatio(x.Training, dense.Training), ModelSpeed.MedianRatio(x.Scoring, dense.Scoring));
    }

    /// <summary>Batch images/s and one-image latency of both models after Model.Save and Model.Load, the twin first.</summary>
    private static double[] OnnxRatios(string model, string twin)
    {
        var shape = new ImageShape(1, 28, 28);
        var dense = PersistenceBenchmark.Score(twin, shape, 10, rows: 2000, calls: 200, warmup: 20);
        var x = PersistenceBenchmark.Score(model, shape, 10, rows: 2000, calls: 200, warmup: 20);
        return [x.Onnx / dense.Onnx, dense.OnnxMs / x.OnnxMs];
    }
}
