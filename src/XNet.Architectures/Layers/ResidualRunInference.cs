using System.Runtime.InteropServices;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>A conv unit's folded inference as a step over raw memory: the plan, its forward weights and the epilogue.</summary>
/// <param name="Plan">The direct kernel's plan for the unit's input size (one that runs over raw items).</param>
/// <param name="Weights">The folded weights in the order the forward kernel applies them.</param>
/// <param name="Epilogue">The shift and activation, bound to memory per run (<see cref="PlaneEpilogue.At"/>).</param>
internal sealed record FoldedStep(SparseConvPlan Plan, Tensor Weights, PlaneEpilogue Epilogue) : IDisposable
{
    /// <inheritdoc />
    public void Dispose() => Weights.Dispose();
}

/// <summary>A residual block as <see cref="ResidualRunInference"/> takes it: its branch's units, and its shortcut projection if any.</summary>
/// <param name="Units">The branch's conv units in order; the last one has no activation of its own.</param>
/// <param name="Shortcut">The shortcut projection (a conv unit without activation), or null for the identity.</param>
internal sealed record ResidualBranch(IReadOnlyList<Conv2dNormActivation> Units, Conv2dNormActivation? Shortcut = null);

/// <summary>
/// Folded inference of consecutive residual blocks a few batch items at a time: each thread takes a run of items
/// through every unit of every block, with each block's shortcut addition and ReLU, while the run's activations stay in
/// its core's cache.
/// </summary>
/// <remarks>
/// Unit by unit over the whole batch, each layer's output (6.4 MB for 16 channels of 28 x 28 at batch 128) leaves the
/// cache before the next layer reads it, and a block reads its input twice (its first convolution, then the shortcut) and
/// each intermediate activation once more. Here only the first block's input and the last block's output cross memory,
/// and the first block's shortcut projection if it has one (a stage's first block: a dense 1x1 convolution, run over the
/// whole batch before the items). The kernels are the ones the unit-by-unit pass runs, over fewer items, so the scores
/// are the same to the bit.
/// </remarks>
internal static unsafe class ResidualRunInference
{
    /// <summary>A run's activations (three buffers of the largest) to keep within a core's second-level cache.</summary>
    private const long RunBytes = 384 * 1024;

    /// <summary>Floats of slack after each buffer, for a kernel's whole-vector reads past its last row.</summary>
    private const int Slack = 64;

    /// <summary>
    /// The blocks' output, each block being ReLU(branch(x) + shortcut(x)), or null where any unit of a branch would not
    /// fold through the direct kernel over raw items (training, gradients on, a dense layer, planes the kernel does not
    /// take), a block after the first has a shortcut projection, a branch's output does not match its shortcut's, or the
    /// batch has fewer items than threads.
    /// </summary>
    public static Tensor? TryRun(IReadOnlyList<ResidualBranch> blocks, Tensor input)
    {
        int threads = get_num_threads();
        if (blocks.Count == 0 || blocks.Skip(1).Any(block => block.Shortcut is not null) || is_grad_enabled() || input.dim() != 4 ||
            !SparseCorrelation.CanRun(input) || !input.is_contiguous() || input.shape[0] < threads)
        {
            return null; // fewer items than threads (one image): left to each layer's own split, before any folding work
        }

        var steps = new List<List<FoldedStep>>();
        try
        {
            long channels = input.shape[1], height = input.shape[2], width = input.shape[3], largest = channels * height * width;
            foreach (var block in blocks)
            {
                var branch = new List<FoldedStep>();
                steps.Add(branch);
                var (blockChannels, blockHeight, blockWidth) = (channels, height, width);
                for (int i = 0; i < block.Units.Count; i++)
                {
                    using var probe = empty(1, channels, height, width);
                    var step = block.Units[i].FoldedStepFor(probe, i < block.Units.Count - 1 ? null : Activation.ReLU);
                    if (step is null)
                    {
                        return null;
                    }

                    branch.Add(step);
                    (channels, height, width) = (step.Plan.OutputChannels, step.Plan.OutputHeight, step.Plan.OutputWidth);
                    largest = Math.Max(largest, channels * height * width);
                }

                if (block.Shortcut is null && (channels, height, width) != (blockChannels, blockHeight, blockWidth))
                {
                    return null;
                }
            }

            // Runs of an even count (7 x 7 planes put two items side by side), at least two a thread where the batch allows
            // (a batch of at least as many items as threads gives every thread a run).
            int batch = (int)input.shape[0];
            int items = (int)Math.Max(1, RunBytes / (4 * 3 * largest));
            items = Math.Min(items > 1 ? items & ~1 : 1, Math.Max(1, batch / (2 * threads)));

            using var scope = NewDisposeScope();
            var residual = blocks[0].Shortcut?.call(input).contiguous();
            if (residual is not null && !residual.shape.SequenceEqual(new[] { input.shape[0], channels, height, width }))
            {
                return null;
            }

            var output = empty(input.shape[0], channels, height, width);
            Run(steps, input, residual, output, largest, items, threads);
            return output.MoveToOuterDisposeScope();
        }
        finally
        {
            steps.SelectMany(branch => branch).ToList().ForEach(step => step.Dispose());
        }
    }

    /// <summary>
    /// Runs <paramref name="blocks"/> over runs of <paramref name="items"/> items of <paramref name="input"/> into
    /// <paramref name="output"/>, spread over <paramref name="threads"/> threads; the first block adds
    /// <paramref name="shortcut"/> (its projection's output) where given, its own input otherwise.
    /// </summary>
    private static void Run(List<List<FoldedStep>> blocks, Tensor input, Tensor? shortcut, Tensor output, long largest, int items, int threads)
    {
        int batch = (int)input.shape[0];
        long inputItem = input.numel() / batch, outputItem = output.numel() / batch;
        var (inputAddress, outputAddress) = ((nint)TensorMemory.Floats(input), (nint)TensorMemory.Floats(output));
        nint shortcutAddress = shortcut is null ? 0 : (nint)TensorMemory.Floats(shortcut);
        var weights = blocks.Select(branch => branch.Select(step => (nint)TensorMemory.Floats(step.Weights)).ToArray()).ToArray();
        KernelThreads.ForEach((batch + items - 1) / items, threads, run =>
        {
            int first = (int)run * items, count = Math.Min(items, batch - first);
            long floats = count * largest;
            var buffers = new float*[3];
            try
            {
                for (int k = 0; k < buffers.Length; k++)
                {
                    buffers[k] = (float*)NativeMemory.AlignedAlloc((nuint)(4 * (floats + Slack)), 64);
                    new Span<float>(buffers[k] + floats, Slack).Clear();
                }

                float* x = (float*)inputAddress + first * inputItem, y = (float*)outputAddress + first * outputItem;
                for (int b = 0; b < blocks.Count; b++)
                {
                    float* residual = b == 0 && shortcutAddress != 0 ? (float*)shortcutAddress + first * outputItem : x;
                    for (int i = 0; i < blocks[b].Count; i++)
                    {
                        bool last = i == blocks[b].Count - 1;
                        // The run's output goes to the output tensor; anything else to a buffer that is neither the source
                        // nor the block's input (three buffers always leave one).
                        float* into = last && b == blocks.Count - 1 ? y
                            : buffers[buffers[0] != x && buffers[0] != residual ? 0 : buffers[1] != x && buffers[1] != residual ? 1 : 2];
                        var step = blocks[b][i];
                        step.Plan.ForwardItems(x, into, count, (float*)weights[b][i], step.Epilogue.At(into, last ? residual : null));
                        x = into;
                    }
                }
            }
            finally
            {
                foreach (var buffer in buffers)
                {
                    NativeMemory.AlignedFree(buffer);
                }
            }
        });
    }
}
