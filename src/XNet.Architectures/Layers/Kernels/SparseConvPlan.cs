using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The terms of one expander convolution at one input size: which shifted input plane each weight multiplies in the
/// forward pass, the input gradient and the weight gradient (<see cref="SparseCorrelation"/>), and how inputs are laid
/// out for them (zero padding, slack rows, and for stride s the s x s phase planes that turn a strided convolution into
/// unit-stride ones).
/// </summary>
/// <remarks>
/// Forward, stride s: the input is padded to (s·Hq) x (s·Wq) and split into phases, phase (a, b) of channel c holding
/// padded pixels (s·m + a, s·n + b); weight (o, t, u, v) then reads phase (u mod s, v mod s) of channel indices[o, t]
/// shifted by (u / s, v / s). Input gradient: input pixel (s·m + a, s·n + b) receives weight (o, t, u, v) exactly when
/// u ≡ a + p and v ≡ b + p (mod s), from output pixel (m + (a + p - u) / s, n + (b + p - v) / s); so each input phase
/// plane (channel c, phase (a, b), of ceil(H / s) x ceil(W / s)) is a unit-stride correlation of the output gradient,
/// padded by (k - 1) / s, with the weights that read it. For s = 1 the phase plane is the input gradient itself.
/// </remarks>
internal sealed class SparseConvPlan
{
    private readonly int inputChannels;
    private readonly int outputChannels;
    private readonly int kernel;
    private readonly int stride;
    private readonly int padding;
    private readonly int height;
    private readonly int width;
    private readonly int degree;

    // Forward and weight gradient: the input padded (with slack rows) and split into stride x stride phase planes.
    private readonly int phaseRows;
    private readonly int phaseWidth;
    private readonly TermTable forward;
    private readonly TermTable weightGradient;
    // 1x1: whether the weight gradient's terms run by input plane, reading the output gradient's planes from cache (fewer
    // outputs than inputs; Pointwise.WeightGradient), rather than by output plane reading the input's.
    private readonly bool pointwiseGradientByInput;
    // Stride-2 weight gradient: its groups by the input they read (each input's 4 phase planes are 4 times an output plane).
    private readonly (int[] Groups, int[] Planes)? weightGradientByInput;

    // Input gradient: the output gradient padded by `shift` on top and left, to upstreamRows x upstreamWidth, correlated
    // into input phase planes of inputPlaneRows x inputPlaneWidth.
    private readonly int shift;
    private readonly int inputPlaneRows;
    private readonly int inputPlaneWidth;
    private readonly int upstreamRows;
    private readonly int upstreamWidth;
    private readonly TermTable input;

    /// <summary>Builds the terms for a graph (indices, C_out x D) at an input of height x width.</summary>
    public SparseConvPlan(long[] indices, int inputChannels, int outputChannels, int kernel, int stride, int padding, int height, int width)
    {
        this.inputChannels = inputChannels;
        this.outputChannels = outputChannels;
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
        this.height = height;
        this.width = width;
        degree = indices.Length / outputChannels;
        OutputHeight = (int)OutputSize(height, kernel, stride, padding);
        OutputWidth = (int)OutputSize(width, kernel, stride, padding);
        int reach = (kernel - 1) / stride; // the largest phase shift of a tap

        phaseWidth = CeilDiv(width + 2 * padding, stride);
        if (kernel == 3 && stride == 2 && phaseWidth > 8)
        {
            // Phase rows of whole 64-byte lines: two of a stride-2 row's three loads per phase row are then aligned (the
            // forward pass of x-resnet-50-4's stride-2 layers 8-12 % faster, 15- and 29-wide rows padded to 16 and 32).
            phaseWidth = CeilDiv(phaseWidth, 16) * 16;
        }
        phaseRows = Math.Max(CeilDiv(height + 2 * padding, stride), RowsRead(OutputHeight, OutputWidth, reach, phaseWidth));
        int phasePlane = phaseRows * phaseWidth;

        shift = reach;
        int lead = (stride - 1 + padding) / stride; // the largest (a + p - u) / s: how far below its own row a phase pixel reads
        inputPlaneRows = CeilDiv(height, stride);
        inputPlaneWidth = CeilDiv(width, stride);
        upstreamWidth = Math.Max(OutputWidth + shift, inputPlaneWidth + shift + lead);
        upstreamRows = Math.Max(OutputHeight + shift, RowsRead(inputPlaneRows, inputPlaneWidth, shift + lead, upstreamWidth));
        int upstreamPlane = upstreamRows * upstreamWidth;

        if (Flat)
        {
            int plane = height * width, perBlock = Pointwise.Blocking(plane).PerBlock;
            var (forwardPlanes, inputPlanes) = Terms(indices, plane, plane);
            var (byPlane, byInput) = (TermTable.FromTerms(forwardPlanes), TermTable.FromTerms(inputPlanes));
            pointwiseGradientByInput = outputChannels < inputChannels;
            weightGradient = (pointwiseGradientByInput ? byInput : byPlane).PaddedToEight();
            forward = byPlane.InSourceBlocks(plane, perBlock, CeilDiv(inputChannels, perBlock));
            input = byInput.InSourceBlocks(plane, perBlock, CeilDiv(outputChannels, perBlock));
            return;
        }

        if (Unpadded)
        {
            forward = UnpaddedStencils(indices, height * width);
            input = ChannelReaders(indices, OutputHeight * OutputWidth, k => 8 - k);
            weightGradient = forward;
            return;
        }

        var (forwardTerms, inputTerms) = Terms(indices, phasePlane, upstreamPlane);
        forward = TermTable.FromTerms(forwardTerms);
        input = TermTable.FromTerms(inputTerms);
        weightGradient = forward.PaddedToEight();
        if (kernel == 3 && stride == 2)
        {
            // Forward and weight gradient over the 4 phase planes.
            forward = forward.ToPhaseGroups(phasePlane);
            weightGradient = forward;
            weightGradientByInput = weightGradient.ByInput();
            if (TransposedPhases)
            {
                // Input gradient: per input channel, the (output, slot) pairs that read it, each sweeping its unpadded
                // output-gradient plane once and writing the channel's pixels directly (Stencil3x3.InputGradientStride2).
                input = ChannelReaders(indices, OutputHeight * OutputWidth, k => k);
            }
        }
    }

    /// <summary>The output side of a convolution over an input side of <paramref name="size"/>.</summary>
    public static long OutputSize(long size, int kernel, int stride, int padding) => (size + 2 * padding - kernel) / stride + 1;

    /// <summary>Output channels.</summary>
    public int OutputChannels => outputChannels;

    /// <summary>Output rows.</summary>
    public int OutputHeight { get; }

    /// <summary>Output columns.</summary>
    public int OutputWidth { get; }

    /// <summary>
    /// Whether the input gradient runs as per-channel groups that write the channel's 4 phase planes at once
    /// (<see cref="Stencil3x3.InputGradientStride2"/>: 3x3, stride 2, padding 1) rather than as generic terms per phase plane.
    /// </summary>
    private bool TransposedPhases => kernel == 3 && stride == 2 && padding == 1;

    /// <summary>
    /// Whether the layer is a 1x1 convolution with stride 1 and no padding, whose passes read and write flat planes in
    /// place (<see cref="Pointwise"/>).
    /// </summary>
    private bool Flat => kernel == 1 && stride == 1 && padding == 0;

    /// <summary>
    /// Whether the passes read unpadded planes (3x3, stride 1, padding 1: <see cref="Stencil3x3"/> supplies the zero
    /// border itself), so that neither the input nor the output gradient is copied into a padded buffer.
    /// </summary>
    private bool Unpadded => kernel == 3 && stride == 1 && padding == 1;

    /// <summary>Whether this plan was built for an input of this height and width.</summary>
    public bool Fits(long inputHeight, long inputWidth) => inputHeight == height && inputWidth == width;

    /// <summary>
    /// The input laid out for the forward pass and the weight gradient: the input itself for unit-stride 3x3 and 1x1
    /// layers, otherwise padded, with slack rows, in stride x stride phases.
    /// </summary>
    public Tensor LayOut(Tensor input, int threads)
    {
        if (Unpadded || Flat)
        {
            return input.contiguous();
        }

        long batch = input.shape[0];
        using var source = input.contiguous();
        if (PhasesSplit && SparseCorrelation.CanRun(input))
        {
            return SplitIntoPhases(source, batch, threads);
        }

        var padded = nn.functional.pad(source,
            new long[] { padding, stride * phaseWidth - width - padding, padding, stride * phaseRows - height - padding });
        if (stride == 1)
        {
            return padded;
        }

        using (padded)
        using (var rows = padded.view(batch, inputChannels, phaseRows, stride, phaseWidth, stride))
        using (var phases = rows.permute(0, 1, 3, 5, 2, 4))
        {
            return phases.contiguous();
        }
    }

    /// <summary>The stride-2 layout in one pass over the input (<see cref="PhaseLayout"/>).</summary>
    private unsafe Tensor SplitIntoPhases(Tensor input, long batch, int threads)
    {
        var phases = empty(new[] { batch, inputChannels, 2, 2, phaseRows, phaseWidth });
        PhaseLayout.Split(TensorMemory.Floats(input), TensorMemory.Floats(phases), (int)batch, inputChannels, height, width, padding, phaseRows,
            phaseWidth, threads);
        return phases;
    }

    /// <summary>
    /// The convolution of the laid-out input with the compact weight (C_out, D, k, k), with <paramref name="epilogue"/>
    /// applied to each output plane.
    /// </summary>
    public Tensor Forward(Tensor laidOut, Tensor weight, int threads, PlaneEpilogue? epilogue = null)
    {
        var output = empty(laidOut.shape[0], outputChannels, OutputHeight, OutputWidth);
        epilogue?.Bind(output);
        Correlate(forward, laidOut, Unpadded ? width : phaseWidth, weight, output, threads, epilogue);
        return output;
    }

    /// <summary>
    /// Whether <see cref="InputGradient"/> can add another gradient of the input to each plane as it finishes it (1x1 and
    /// unit-stride 3x3 layers, whose input gradient is a correlation over the output gradient as it is).
    /// </summary>
    public bool InputGradientAdds => Unpadded || Flat;

    /// <summary>
    /// The gradient with respect to the layer's input, (N, C_in, H, W); with <paramref name="added"/> (the input's gradient
    /// from its other reader, a residual block's shortcut), their sum, each plane added as the kernel finishes it, where
    /// <see cref="InputGradientAdds"/>.
    /// </summary>
    public unsafe Tensor InputGradient(Tensor upstream, Tensor weight, int threads, Tensor? added = null)
    {
        long batch = upstream.shape[0];
        if (added is not null && !InputGradientAdds)
        {
            throw new InvalidOperationException($"A {kernel}x{kernel} layer of stride {stride} and padding {padding} does not add to its input gradient.");
        }

        if (InputGradientOverItems)
        {
            var pixels = empty(batch, inputChannels, height, width);
            // A zero shift, the added gradient as the residual: (g + 0) + added, the bits of the two gradients' own sum.
            var epilogue = added is null ? null : new PlaneEpilogue(new float[inputChannels], Activation.None, added);
            epilogue?.Bind(pixels);
            using var passWeights = PassWeights(input, weight);
            InputGradientItems(TensorMemory.Floats(upstream), TensorMemory.Floats(pixels), (int)batch, TensorMemory.Floats(passWeights), threads, epilogue);
            return pixels;
        }

        using var scope = NewDisposeScope();
        var padded = nn.functional.pad(upstream,
            new long[] { shift, upstreamWidth - OutputWidth - shift, shift, upstreamRows - OutputHeight - shift });
        var gradient = empty(batch, inputChannels * stride * stride, inputPlaneRows, inputPlaneWidth);
        Correlate(input, padded, upstreamWidth, weight, gradient, threads);

        if (stride > 1)
        {
            // Phases back to pixels (and the rows and columns a size not divisible by the stride added, cut away).
            gradient = gradient.view(batch, inputChannels, stride, stride, inputPlaneRows, inputPlaneWidth).permute(0, 1, 4, 2, 5, 3)
                .reshape(batch, inputChannels, stride * inputPlaneRows, stride * inputPlaneWidth)
                .narrow(2, 0, height).narrow(3, 0, width).contiguous();
        }

        return gradient.MoveToOuterDisposeScope();
    }

    /// <summary>The gradient with respect to the compact weight, (C_out, D, k, k).</summary>
    public unsafe Tensor WeightGradient(Tensor laidOut, Tensor upstream, int threads) =>
        WeightGradient(laidOut, TensorMemory.Floats(upstream), threads, null);

    /// <summary>
    /// Whether <see cref="UnitGradients"/> can run: a 3x3 layer of stride 1 or 2 and padding 1, whose weight gradient runs
    /// in chunks of batch items that its input gradient can follow chunk by chunk.
    /// </summary>
    public bool RunsUnitGradients => Unpadded || TransposedPhases;

    /// <summary>
    /// The input gradient (null unless <paramref name="inputNeedsGradient"/>; with <paramref name="added"/>, plus it, as
    /// <see cref="InputGradient"/> adds it) and the weight gradient, for an output gradient that <paramref name="fill"/>
    /// writes a chunk of batch items at a time: each chunk is made, summed into the weight gradient and read by the input
    /// gradient while it is in the core's cache, so the whole output gradient is never written to memory. The results
    /// have the bits of <see cref="InputGradient"/> and <see cref="WeightGradient(Tensor, Tensor, int)"/> given the
    /// same output gradient. Only where <see cref="RunsUnitGradients"/>.
    /// </summary>
    /// <remarks>
    /// A convolution unit's backward pass (<see cref="ConvNormFunction"/>): its batch norm's input gradient, one activation
    /// written and read twice, was the output gradient here (x-resnet-20-4 at 28x28, about 6 % of a training step).
    /// </remarks>
    public unsafe (Tensor? Input, Tensor Weight) UnitGradients(Tensor laidOut, Tensor weight, int threads, FillUpstream fill, bool inputNeedsGradient,
        Tensor? added = null)
    {
        if (!RunsUnitGradients || (added is not null && !InputGradientAdds))
        {
            throw new InvalidOperationException(
                $"A {kernel}x{kernel} layer of stride {stride} and padding {padding} has no unit gradients{(RunsUnitGradients ? " that add" : "")}.");
        }

        long batch = laidOut.shape[0];
        var inputGradient = inputNeedsGradient ? empty(batch, inputChannels, height, width) : null;
        using var passWeights = PassWeights(input, weight);
        // A zero shift, the added gradient as the residual (bound per chunk): (g + 0) + added, as InputGradient adds it.
        var epilogue = added is null ? null : new PlaneEpilogue(new float[inputChannels], Activation.None);
        var chunks = new UnitChunks(this, fill, inputGradient is null ? null : TensorMemory.Floats(inputGradient), TensorMemory.Floats(passWeights),
            epilogue, added is null ? null : TensorMemory.Floats(added));
        var weightGradient = WeightGradient(laidOut, null, threads, chunks);
        GC.KeepAlive(passWeights);
        return (inputGradient, weightGradient);
    }

    /// <summary>The output gradient of a unit's chunks (<see cref="UnitGradients"/>): made by the caller, then read by the input gradient.</summary>
    private sealed unsafe class UnitChunks(SparseConvPlan plan, FillUpstream fill, float* inputGradient, float* weights, PlaneEpilogue? epilogue,
        float* added) : IChunkUpstream
    {
        private readonly long outputItem = (long)plan.outputChannels * plan.OutputHeight * plan.OutputWidth;
        private readonly long inputItem = (long)plan.inputChannels * plan.height * plan.width;

        public float* Take(int first, int count)
        {
            var chunk = (float*)NativeMemory.AlignedAlloc((nuint)(count * outputItem * sizeof(float)), 64);
            fill(chunk, first, count);
            return chunk;
        }

        public void Done(int first, int count, float* upstream)
        {
            try
            {
                if (inputGradient == null)
                {
                    return;
                }

                float* into = inputGradient + first * inputItem;
                plan.InputGradientItems(upstream, into, count, weights, threads: 1, epilogue?.At(into, added + first * inputItem));
            }
            finally
            {
                NativeMemory.AlignedFree(upstream);
            }
        }
    }

    private unsafe Tensor WeightGradient(Tensor laidOut, float* upstream, int threads, IChunkUpstream? chunks)
    {
        long batch = laidOut.shape[0];
        if (batch == 0)
        {
            return zeros(outputChannels, degree, kernel, kernel);
        }

        var table = weightGradient;
        bool inPlace = table.WeightsInOrder && table.WeightIndex.Length == outputChannels * degree * kernel * kernel;
        var result = inPlace ? empty(outputChannels, degree, kernel, kernel) : null;
        var values = inPlace ? null : new float[table.WeightIndex.Length];
        fixed (int* start = table.Start)
        fixed (nint* offset = table.Offset)
        fixed (float* valuesPointer = values)
        {
            float* gradient = inPlace ? TensorMemory.Floats(result!) : valuesPointer;
            if (Flat)
            {
                long plane = OutputHeight * OutputWidth, inputItem = laidOut.numel() / batch, outputItem = outputChannels * plane;
                float* x = TensorMemory.Floats(laidOut);
                if (pointwiseGradientByInput)
                {
                    Pointwise.WeightGradient(upstream, outputItem, x, inputItem, (int)batch, inputChannels, (int)plane, start, offset, gradient, threads);
                }
                else
                {
                    Pointwise.WeightGradient(x, inputItem, upstream, outputItem, (int)batch, outputChannels, (int)plane, start, offset, gradient, threads);
                }
            }
            else if (table.GroupSize == 9)
            {
                Stencil3x3.WeightGradient(TensorMemory.Floats(laidOut), laidOut.numel() / batch, Unpadded ? width : phaseWidth, upstream,
                    (int)batch, outputChannels, OutputHeight, OutputWidth, start, offset, gradient, threads, table.PhaseStep,
                    weightGradientByInput, chunks);
            }
            else
            {
                SparseCorrelation.WeightGradient(TensorMemory.Floats(laidOut), laidOut.numel() / batch, phaseWidth, upstream,
                    (int)batch, outputChannels, OutputHeight, OutputWidth, start, offset, gradient, threads);
            }
        }

        if (inPlace)
        {
            return result!;
        }

        // Each value belongs to the flat weight its term reads (padding terms to none).
        var flat = new float[outputChannels * degree * kernel * kernel];
        for (int i = 0; i < values!.Length; i++)
        {
            if (table.WeightIndex[i] >= 0)
            {
                flat[table.WeightIndex[i]] = values[i];
            }
        }

        using var compact = tensor(flat); // named, so that it outlives the view taken from it
        return compact.view(outputChannels, degree, kernel, kernel);
    }

    /// <summary>
    /// Whether the input gradient runs over raw batch items straight into the input's own layout
    /// (<see cref="InputGradientItems"/>): 1x1 and unit-stride 3x3 layers, and 3x3 layers of stride 2 and padding 1.
    /// </summary>
    private bool InputGradientOverItems => Unpadded || Flat || TransposedPhases;

    /// <summary>
    /// The input gradient of <paramref name="items"/> contiguous items of output gradient at <paramref name="upstream"/>
    /// into (items, C_in, H, W) at <paramref name="into"/>, with the input pass's <paramref name="weights"/>
    /// (<see cref="PassWeights"/>) and, where <see cref="InputGradientAdds"/>, <paramref name="epilogue"/> applied to each
    /// plane. Only where <see cref="InputGradientOverItems"/>.
    /// </summary>
    private unsafe void InputGradientItems(float* upstream, float* into, int items, float* weights, int threads, PlaneEpilogue? epilogue)
    {
        long outputItem = (long)outputChannels * OutputHeight * OutputWidth;
        if (items == 0)
        {
            return; // an empty batch: nothing to write
        }

        if (!TransposedPhases)
        {
            Correlate(input, upstream, outputItem, OutputWidth, into, items, inputChannels, height, width, weights, threads, epilogue);
            return;
        }

        fixed (int* start = input.Start)
        fixed (nint* origin = input.Offset)
        {
            Stencil3x3.InputGradientStride2(upstream, outputItem, into, items, inputChannels, height, width, start, origin, weights, threads);
        }
    }

    /// <summary>
    /// Every tap as a term, by output plane for the forward pass (offsets into the padded phase planes) and by input phase
    /// plane for the input gradient (offsets into the padded output gradient).
    /// </summary>
    private (List<List<(nint, long)>> Forward, List<List<(nint, long)>> Input) Terms(long[] indices, int phasePlane, int upstreamPlane)
    {
        var forwardTerms = Enumerable.Range(0, outputChannels).Select(_ => new List<(nint, long)>()).ToList();
        var inputTerms = Enumerable.Range(0, inputChannels * stride * stride).Select(_ => new List<(nint, long)>()).ToList();
        for (int o = 0; o < outputChannels; o++)
        {
            for (int t = 0; t < degree; t++)
            {
                int c = checked((int)indices[o * degree + t]);
                for (int u = 0; u < kernel; u++)
                {
                    for (int v = 0; v < kernel; v++)
                    {
                        long term = (o * degree + t) * kernel * kernel + u * kernel + v;
                        int phase = (c * stride + u % stride) * stride + v % stride;
                        forwardTerms[o].Add((checked(phase * phasePlane + u / stride * phaseWidth + v / stride), term));
                        // The input phase this tap feeds, and the output pixel it comes from relative to the phase pixel.
                        int a = Modulo(u - padding, stride), b = Modulo(v - padding, stride);
                        int rowShift = (a + padding - u) / stride, columnShift = (b + padding - v) / stride;
                        inputTerms[(c * stride + a) * stride + b].Add(
                            (checked(o * upstreamPlane + (shift + rowShift) * upstreamWidth + shift + columnShift), term));
                    }
                }
            }
        }

        return (forwardTerms, inputTerms);
    }

    /// <summary>The forward's stencil groups on unpadded planes: per output, one group per input it reads, at that input plane.</summary>
    private TermTable UnpaddedStencils(long[] indices, int plane)
    {
        var start = Enumerable.Range(0, outputChannels + 1).Select(o => o * degree).ToArray();
        var origin = indices.Select(c => (nint)(c * plane)).ToArray();
        var weights = Enumerable.Range(0, indices.Length * 9).Select(k => (long)k).ToArray();
        return new TermTable(start, origin, weights, 9);
    }

    /// <summary>
    /// The input gradient's 3 x 3 groups on unpadded output-gradient planes: per input channel, one group per (output,
    /// slot) that reads it, at that output's plane, with tap k's weight at <paramref name="tap"/>(k) of the slot's 9
    /// (unit stride: the kernel flipped, since a correlation with the flipped kernel is the transposed convolution).
    /// </summary>
    private TermTable ChannelReaders(long[] indices, int plane, Func<int, int> tap)
    {
        var readers = Enumerable.Range(0, inputChannels).Select(_ => new List<(nint, long)>()).ToList();
        for (int o = 0; o < outputChannels; o++)
        {
            for (int t = 0; t < degree; t++)
            {
                readers[checked((int)indices[o * degree + t])].Add((o * plane, o * degree + t));
            }
        }

        var groups = TermTable.FromTerms(readers);
        var weights = groups.WeightIndex.SelectMany(pair => Enumerable.Range(0, 9).Select(k => pair * 9 + tap(k))).ToArray();
        return new TermTable(groups.Start, groups.Offset, weights, 9);
    }

    /// <summary>
    /// A pass's weights: the compact weight itself (contiguous) where the table applies them in order, otherwise its values
    /// in the table's order, gathered from its memory.
    /// </summary>
    /// <remarks>
    /// Read in place rather than with <c>index_select</c>: a pass runs this once per call, and the values cost less than
    /// the index tensor and the operator dispatch (about 18 layers x 2 passes per training step).
    /// </remarks>
    private unsafe Tensor PassWeights(TermTable table, Tensor weight)
    {
        if (weight.numel() != (long)outputChannels * degree * kernel * kernel)
        {
            throw new ArgumentException(
                $"The compact weight must be ({outputChannels}, {degree}, {kernel}, {kernel}), got ({string.Join(", ", weight.shape)}).",
                nameof(weight));
        }

        var contiguous = weight.contiguous();
        if (table.WeightsInOrder)
        {
            return contiguous;
        }

        using (contiguous)
        {
            float* values = TensorMemory.Floats(contiguous);
            var gathered = empty(table.WeightIndex.Length, dtype: ScalarType.Float32);
            float* into = TensorMemory.Floats(gathered);
            for (int k = 0; k < table.WeightIndex.Length; k++)
            {
                long index = table.WeightIndex[k];
                into[k] = index >= 0 ? values[index] : 0f; // a padding term (no weight) multiplies by zero
            }

            return gathered;
        }
    }

    /// <summary>Runs one pass's correlation: its weights (<see cref="PassWeights"/>), then the kernel for its table.</summary>
    private unsafe void Correlate(TermTable table, Tensor source, int sourceRow, Tensor weight, Tensor output, int threads,
        PlaneEpilogue? epilogue = null)
    {
        long batch = source.shape[0];
        if (batch == 0)
        {
            return; // an empty batch: nothing to write
        }

        using var passWeights = PassWeights(table, weight);
        Correlate(table, TensorMemory.Floats(source), source.numel() / batch, sourceRow, TensorMemory.Floats(output), (int)batch,
            (int)output.shape[1], (int)output.shape[2], (int)output.shape[3], TensorMemory.Floats(passWeights), threads, epilogue);
    }

    /// <summary>The kernel for <paramref name="table"/> over <paramref name="batch"/> items of raw memory.</summary>
    private unsafe void Correlate(TermTable table, float* source, long sourceBatch, int sourceRow, float* output, int batch, int planes,
        int outH, int outW, float* weights, int threads, PlaneEpilogue? epilogue)
    {
        fixed (int* start = table.Start)
        fixed (nint* offset = table.Offset)
        {
            if (Flat)
            {
                Pointwise.Correlate(source, sourceBatch, output, batch, planes, outH * outW, (table.Start.Length - 1) / planes, start, offset,
                    weights, threads, epilogue);
            }
            else if (table.GroupSize == 9)
            {
                Stencil3x3.Correlate(source, sourceBatch, sourceRow, output, batch, planes, outH, outW, start, offset, weights, threads,
                    table.PhaseStep, epilogue);
            }
            else
            {
                SparseCorrelation.Correlate(source, sourceBatch, sourceRow, output, batch, planes, outH, outW, start, offset, weights, threads,
                    epilogue);
            }
        }
    }

    /// <summary>
    /// Whether the forward pass can run over part of a batch in raw memory (<see cref="ForwardItems"/>): 1x1 and
    /// unit-stride 3x3 layers, which read the input as it is, and stride-2 layers, which lay it out in phases first.
    /// </summary>
    public bool RunsOverItems => Unpadded || Flat || PhasesSplit;

    /// <summary>Whether the forward pass reads the input split into its 4 phase planes in one pass (<see cref="PhaseLayout"/>).</summary>
    private bool PhasesSplit => stride == 2;

    /// <summary>The forward pass's weights for a compact weight (C_out, D, k, k), in the order its kernel applies them.</summary>
    public Tensor ForwardWeights(Tensor weight) => PassWeights(forward, weight);

    /// <summary>
    /// The forward pass of <paramref name="items"/> contiguous (N, C_in, H, W) items at <paramref name="input"/> into
    /// <paramref name="output"/>, on the calling thread, with <paramref name="weights"/> from <see cref="ForwardWeights"/>:
    /// the pass <see cref="Forward"/> runs, for a caller that spreads the items over threads itself. Only where
    /// <see cref="RunsOverItems"/>.
    /// </summary>
    public unsafe void ForwardItems(float* input, float* output, int items, float* weights, PlaneEpilogue epilogue)
    {
        if (!RunsOverItems)
        {
            throw new InvalidOperationException($"A {kernel}x{kernel} layer of stride {stride} and padding {padding} does not run over raw items.");
        }

        if (!PhasesSplit)
        {
            Correlate(forward, input, (long)inputChannels * height * width, width, output, items, outputChannels, OutputHeight, OutputWidth,
                weights, threads: 1, epilogue);
            return;
        }

        long phaseItem = (long)inputChannels * 4 * phaseRows * phaseWidth;
        var phases = (float*)NativeMemory.AlignedAlloc((nuint)(4 * items * phaseItem), 64);
        try
        {
            PhaseLayout.Split(input, phases, items, inputChannels, height, width, padding, phaseRows, phaseWidth, threads: 1);
            Correlate(forward, phases, phaseItem, phaseWidth, output, items, outputChannels, OutputHeight, OutputWidth, weights, threads: 1,
                epilogue);
        }
        finally
        {
            NativeMemory.AlignedFree(phases);
        }
    }

    /// <summary>
    /// Rows a buffer of row width <paramref name="rowWidth"/> needs so that the tiles of an output plane (rows x cols),
    /// reading up to <paramref name="reach"/> rows and columns beyond their own position, stay inside it.
    /// </summary>
    private static int RowsRead(int outRows, int outCols, int reach, int rowWidth)
    {
        var (tileRows, tileWidth) = SparseCorrelation.Tile(outCols);
        long lastRead = (long)(CeilDiv(outRows, tileRows) * tileRows - 1 + reach) * rowWidth + CeilDiv(outCols, tileWidth) * tileWidth - 1 + reach;
        return checked((int)(lastRead / rowWidth + 1));
    }

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;

    private static int Modulo(int a, int b) => ((a % b) + b) % b;
}
