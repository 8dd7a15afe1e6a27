using System.Diagnostics;
using TorchSharp;
using XNet.Architectures;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>
/// Training and scoring images/s of one zoo model on this machine, on a synthetic batch, round by round: the measurement
/// behind <c>xnet bench</c>. Models compared side by side take their rounds in turn (<see cref="Round"/> on each), so
/// that drift in the machine's speed lands on all of them alike; compare medians over rounds.
/// </summary>
/// <remarks>
/// A training step is the forward pass, cross-entropy, backward pass and an SGD step (momentum 0.9, Nesterov, weight
/// decay 5e-4); scoring is an evaluation-mode forward pass without gradients, with the batch norms folded into their
/// convolutions as <see cref="XNetTransformer"/> scores. Both wait for the device at the end of each step or batch.
/// </remarks>
public sealed class ModelSpeed : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> network;
    private readonly optim.Optimizer optimizer;
    private readonly Tensor images;
    private readonly Tensor labels;
    private readonly int batchSize;

    /// <summary>Builds the model (seed 0) with its optimiser and one random batch on <paramref name="device"/>.</summary>
    /// <param name="name">A zoo name (<see cref="ModelZoo.Names"/>).</param>
    /// <param name="input">The input shape.</param>
    /// <param name="classes">The class count.</param>
    /// <param name="batchSize">Images per training step and per scored batch.</param>
    /// <param name="device">Where the model runs.</param>
    public ModelSpeed(string name, ImageShape input, int classes, int batchSize, Device device)
    {
        Name = name;
        this.batchSize = batchSize;
        lock (GlobalGenerator.Gate)
        {
            manual_seed(0);
            network = ModelZoo.Create(name, input, classes, seed: 0).FoldBatchNormsInInference();
        }

        Cost = ModelCost.Measure(network, input);
        network.to(device);
        optimizer = new KeptScalarOptimizers.SGD(network.parameters(), 0.01, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true);
        images = randn(new long[] { batchSize, input.Channels, input.Height, input.Width }, device: device);
        labels = randint(classes, new long[] { batchSize }, device: device);
    }

    /// <summary>The zoo name.</summary>
    public string Name { get; }

    /// <summary>Effective parameters and multiply-accumulates per image.</summary>
    public ModelCost Cost { get; }

    /// <summary>Training images/s of each round so far.</summary>
    public List<double> Training { get; } = new();

    /// <summary>Scoring images/s of each round so far.</summary>
    public List<double> Scoring { get; } = new();

    /// <summary>Two untimed training steps and scored batches (first-call costs: kernels' plans, the JIT, allocations).</summary>
    public void Warm()
    {
        Train(2);
        Score(2);
    }

    /// <summary>Times <paramref name="steps"/> training steps, then <paramref name="steps"/> scored batches, and adds one figure to each list.</summary>
    public void Round(int steps)
    {
        long start = Stopwatch.GetTimestamp();
        Train(steps);
        Training.Add(steps * batchSize / Stopwatch.GetElapsedTime(start).TotalSeconds);
        start = Stopwatch.GetTimestamp();
        Score(steps);
        Scoring.Add(steps * batchSize / Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    /// <summary>
    /// Warms every model, then runs <paramref name="rounds"/> rounds in which each model in turn times
    /// <paramref name="steps"/> steps and batches (<see cref="Round"/>), so that all of them see the same machine.
    /// </summary>
    /// <param name="models">The models, compared in the order given.</param>
    /// <param name="rounds">Rounds; each adds one figure to every model's lists.</param>
    /// <param name="steps">Training steps and scored batches per model and round.</param>
    /// <param name="cancellation">Checked before each round.</param>
    public static void InTurns(IReadOnlyList<ModelSpeed> models, int rounds, int steps, CancellationToken cancellation = default)
    {
        foreach (var model in models)
        {
            model.Warm();
        }

        for (int round = 0; round < rounds; round++)
        {
            cancellation.ThrowIfCancellationRequested();
            foreach (var model in models)
            {
                model.Round(steps);
            }
        }
    }

    /// <summary>The median of <paramref name="values"/> (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? throw new ArgumentException("No values.", nameof(values))
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>The median over rounds of <paramref name="model"/>'s figure divided by <paramref name="twin"/>'s in the same round.</summary>
    public static double MedianRatio(IReadOnlyList<double> model, IReadOnlyList<double> twin) => Median(model.Zip(twin, (a, b) => a / b));

    /// <inheritdoc/>
    public void Dispose()
    {
        optimizer.Dispose();
        network.Dispose();
        images.Dispose();
        labels.Dispose();
    }

    private void Train(int steps)
    {
        network.train();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(network.call(images), labels);
            loss.backward();
            optimizer.step();
            loss.item<float>(); // waits for the device, so the step is timed whole
        }
    }

    private void Score(int batches)
    {
        network.eval();
        using var noGrad = no_grad();
        for (int i = 0; i < batches; i++)
        {
            using var scope = NewDisposeScope();
            network.call(images).sum().item<float>();
        }
    }
}
