using TorchSharp;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// How an <see cref="ExpanderConv2d"/> (or <see cref="ExpanderLinear"/>) computes its forward pass. Every form computes the same
/// function with the same parameters and gradients (tests hold them within 1e-5 of <see cref="Reference"/>); they differ
/// only in speed and memory.
/// </summary>
public enum ExpanderExecution
{
    /// <summary>
    /// Chosen per layer: <see cref="DirectSparse"/> for float32 layers on a CPU with AVX2 + FMA whose density D / C_in is
    /// at most 1/4, where the layer benchmark (<c>tests/XNet.Benchmarks layers</c>) measured it at least as fast as every
    /// other form, except that a layer runs <see cref="Reference"/> for an input where libtorch's dense convolution was
    /// faster: a unit-stride k x k layer whose output plane has fewer than 36 pixels (under 6 x 6), a strided one with
    /// fewer than 49 (under 7 x 7) or fewer than its degree D, and a 1x1 layer denser than 1/8 unless it has stride 1, no
    /// padding and an output plane of at least 7 x 7 (<see cref="ExpanderExecutionPolicy.PlaneSuitsDirectKernel"/>);
    /// otherwise <see cref="BlockGrouped"/> when the graph's outputs share input rows in blocks of at least two
    /// (<see cref="Graphs.ExpanderGraph.BlockCount"/> below C_out, as in the structured family); otherwise
    /// <see cref="DirectSparse"/> for a unit-stride 3x3 layer of density up to 1/2 on output planes of at least 7 x 7, and
    /// <see cref="Reference"/> for the rest. On a GPU it is always <see cref="Reference"/> (cuDNN's dense convolution on the scattered
    /// weight), without reading the graph back from the device; set <see cref="BlockGrouped"/> explicitly to run the
    /// grouped form there.
    /// </summary>
    Auto,

    /// <summary>The compact weight scattered into a dense weight, then one dense convolution (or matrix product): the correctness oracle.</summary>
    Reference,

    /// <summary>
    /// A gather of the G blocks' input channels (<c>index_select</c>, G x D channels) and one convolution with G groups over the
    /// compact weight. Exact for any graph; fast only when G is small (the structured family), very slow when G = C_out.
    /// </summary>
    BlockGrouped,

    /// <summary>
    /// For 1x1 convolutions without padding and for linear layers, exact for any graph: a gather of every output's D inputs
    /// and a batched matrix product with the compact weight (C_out products of 1 x D by D x N·H·W).
    /// </summary>
    GatherMatmul,

    /// <summary>
    /// A direct convolution over the compact weight in vectorised C# (AVX2 + FMA), forward and backward, exact for any
    /// graph: each output plane sums only its D x k x k shifted input planes, so the cost follows the edges that exist
    /// (<see cref="Kernels.SparseCorrelation"/>). Float32 on the CPU only; elsewhere the layer runs <see cref="Reference"/>.
    /// </summary>
    DirectSparse,
}

/// <summary>The rules by which <see cref="ExpanderExecution.Auto"/> chooses an <see cref="ExpanderConv2d"/>'s form.</summary>
internal static class ExpanderExecutionPolicy
{
    /// <summary>The form <paramref name="requested"/> resolves to for <paramref name="layer"/>.</summary>
    /// <param name="requested">The layer's <see cref="ExpanderConv2d.Execution"/>; any other than Auto is kept.</param>
    /// <param name="layer">The layer.</param>
    /// <param name="blocks">The graph's block count, asked for only where the rules need it.</param>
    public static ExpanderExecution Resolve(ExpanderExecution requested, ExpanderConv2d layer, Func<int> blocks)
    {
        if (requested != ExpanderExecution.Auto)
        {
            return requested;
        }

        if (layer.Weight.device_type != DeviceType.CPU)
        {
            // Off the CPU the reference form runs (the vendor's dense convolution on the scattered weight): checking the
            // graph's block structure would read the device's indices back, one synchronisation per layer and pass.
            return ExpanderExecution.Reference;
        }

        // Measured on the CPU (docs/benchmarks.md): the direct kernel beats the dense, masked, reference and grouped forms
        // at density 1/4 and below (with the plane rules of PlaneSuitsDirectKernel). Denser, the grouped form pays for
        // structured graphs, and the direct kernel still beats the reference form on the paper graph's unit-stride 3x3
        // layers (DenserDirect); other layers (and other dtypes) run the reference form.
        bool direct = SparseCorrelation.CanRun(layer.Weight);
        if (direct && 4 * layer.Degree <= layer.InputChannels)
        {
            return ExpanderExecution.DirectSparse;
        }

        if (blocks() < layer.OutputChannels)
        {
            return ExpanderExecution.BlockGrouped;
        }

        return direct && DenserDirect(layer) ? ExpanderExecution.DirectSparse : ExpanderExecution.Reference;
    }

    /// <summary>
    /// Whether a layer denser than 1/4 runs the direct kernel: a unit-stride 3x3 layer of density 1/2 or below, on output
    /// planes of at least <see cref="SmallestDenserDirectPlane"/> pixels, or a 1x1 layer of density 1/2 or below with
    /// stride 1 and no padding, on planes of at least <see cref="SmallestDenserPointwisePlane"/>.
    /// </summary>
    /// <remarks>
    /// At density 1/2 the kernel's forward and both gradients against libtorch's dense convolution (the reference form's
    /// cost; the <c>layers</c> and <c>phases</c> benchmarks, 2026-12-06): unit-stride 3x3 layers 1.35-1.50x on x-resnet-50's
    /// 56-, 28- and 14-wide planes, 1.2x at 7 x 7 with 512 channels, 1.25-1.47x on x-resnet-20's 28-, 14- and 7-wide ones,
    /// 2.2x on X-DenseNet-BC's 96->24 layers (whose 24 outputs libtorch runs poorly), but 1.04x at 12 x 12 with 128
    /// channels and 0.86x at 6 x 6 with 256; strided 3x3 layers 0.7-1.6x, so those keep the reference form. 1x1 layers: see
    /// <see cref="SmallestDenserPointwisePlane"/>.
    /// </remarks>
    private static bool DenserDirect(ExpanderConv2d layer) =>
        2 * layer.Degree <= layer.InputChannels && layer.Stride == 1 &&
        (layer.KernelSize == 3 || (layer.KernelSize == 1 && layer.Padding == 0));

    /// <summary>The smallest output plane, in pixels, on which a <see cref="DenserDirect"/> layer runs the direct kernel.</summary>
    public const int SmallestDenserDirectPlane = 7 * 7;

    /// <summary>
    /// The smallest output plane, in pixels, on which <see cref="ExpanderExecution.Auto"/> runs a unit-stride k x k layer's
    /// direct kernel.
    /// </summary>
    /// <remarks>
    /// The kernel vectorises over a plane's pixels (planes under 8 wide over several batch items side by side), so its
    /// cost per group barely shrinks on tiny planes, while libtorch's dense convolution gets more efficient with more
    /// channels. Measured with the <c>phases</c> and <c>layers</c> benchmarks (2026-12-05, density 1/4, forward and both
    /// gradients against libtorch's dense convolution, x-resnet-18-4 at 64-160 pixels, x-resnet-50-4 at 224): unit-stride
    /// outputs of 7 x 7 ran 1.0-1.3x dense at 512 channels (D = 128) and 1.8x at 64, 6 x 6 1.1x at 256 (D = 64); 5 x 5
    /// ran 0.9x at 512, 4 x 4 0.7x at 256, 3 x 3 0.7x and 2 x 2 0.45x at 512.
    /// </remarks>
    public const int SmallestDirectPlane = 6 * 6;

    /// <summary>
    /// The smallest output plane, in pixels, on which <see cref="ExpanderExecution.Auto"/> runs a strided k x k layer's
    /// direct kernel; the plane also needs at least D pixels.
    /// </summary>
    /// <remarks>
    /// Strided layers run over the input's phase planes, one plane at a time. Measured as above: 7 x 7 outputs ran even
    /// with dense at 64 channels (D = 16) and 0.75-0.9x at 512 (D = 128), 8 x 8 1.5x at 128 channels (D = 16), 14 x 14 and
    /// 28 x 28 1.2-1.4x up to 256 channels (D = 64), and outputs of 5 x 5 and smaller 0.15-0.4x.
    /// </remarks>
    public const int SmallestStridedDirectPlane = 7 * 7;

    /// <summary>
    /// The smallest output plane, in pixels, on which <see cref="ExpanderExecution.Auto"/> runs a 1x1 layer of density
    /// above 1/8 (up to 1/4) directly: one with stride 1 and no padding, whose planes the kernel reads flat.
    /// </summary>
    /// <remarks>
    /// A 1x1 layer is a matrix product, which libtorch runs well, and more so with more channels on small planes. Measured
    /// with the <c>phases</c> benchmark (2026-12-06, batch 16, density 1/4, the autograd call against libtorch's dense
    /// forward and backward, with large buffers reused and the kernel's pixel tiles): the 1x1 layers of x-resnet-50-4 and
    /// x-mobilenet-0.5-4 and -1.0-4 at 224 pixels ran 1.4-2.3x dense on 56 x 56 and 28 x 28 planes, 1.12-1.47x on
    /// 14 x 14 and 1.05-1.35x on 7 x 7 (on 14 x 14 and 7 x 7, 0.64-0.99x before those two changes); at density 1/8
    /// 1.3-3.7x on every plane. Planes under 7 x 7 are not measured and keep the reference form.
    /// </remarks>
    public const int SmallestPointwisePlane = 7 * 7;

    /// <summary>
    /// The smallest output plane, in pixels, on which <see cref="ExpanderExecution.Auto"/> runs a 1x1 layer denser than 1/4
    /// (up to 1/2) directly, with stride 1 and no padding.
    /// </summary>
    /// <remarks>
    /// At density 1/2 the kernel does half the dense multiply-adds at one load each, where libtorch's matrix product reuses
    /// its loads. Measured with the <c>layers</c> benchmark (2026-12-06, batch 16, x-resnet-50-2's 1x1 layers at 224
    /// pixels, forward and both gradients): the direct kernel ran 1.21-1.30x dense on 56 x 56 planes (the reference form
    /// 0.92-1.07x), 1.01-1.09x on 28 x 28 (1.00-1.02x), 0.75-0.83x on 14 x 14 and 0.66-0.70x on 7 x 7 (0.86-0.97x).
    /// X-DenseNet-BC-40-24-2's narrower 1x1 layers on a 28x28 input (48-192 -> 96 channels, batch 128, the <c>phases</c>
    /// benchmark, 2026-12-06): 1.5-1.75x dense on 28 x 28 planes, 1.15-1.25x on 14 x 14, 0.85-0.92x on 7 x 7; the whole
    /// model (<c>xnet bench</c>) then scores 1.45x its dense twin against 1.23-1.27x and trains as fast as before. So 28 x 28
    /// and larger; 14 x 14 planes, a gain for the narrow layers and a loss for the wide ones, keep the reference form.
    /// </remarks>
    public const int SmallestDenserPointwisePlane = 28 * 28;

    /// <summary>
    /// Whether an Auto layer runs the direct kernel for <paramref name="input"/>: 1x1 layers at density 1/8 or below
    /// always, denser ones only with stride 1, no padding and an output plane of at least
    /// <see cref="SmallestPointwisePlane"/> pixels (<see cref="SmallestDenserPointwisePlane"/> above density 1/4);
    /// unit-stride k x k layers whose output plane has at least <see cref="SmallestDirectPlane"/> pixels
    /// (<see cref="SmallestDenserDirectPlane"/> above density 1/4); strided ones at least
    /// <see cref="SmallestStridedDirectPlane"/> and at least D.
    /// </summary>
    public static bool PlaneSuitsDirectKernel(ExpanderConv2d layer, Tensor input)
    {
        if (input.dim() != 4)
        {
            return true; // a malformed input reaches the kernel's own shape check
        }

        long Output(long size) => SparseConvPlan.OutputSize(size, layer.KernelSize, layer.Stride, layer.Padding);
        long pixels = Output(input.shape[2]) * Output(input.shape[3]);
        if (layer.KernelSize == 1)
        {
            return 8 * layer.Degree <= layer.InputChannels || (layer.Stride == 1 && layer.Padding == 0 &&
                pixels >= (4 * layer.Degree <= layer.InputChannels ? SmallestPointwisePlane : SmallestDenserPointwisePlane));
        }

        if (layer.Stride != 1)
        {
            return pixels >= Math.Max(SmallestStridedDirectPlane, layer.Degree);
        }

        return pixels >= (4 * layer.Degree <= layer.InputChannels ? SmallestDirectPlane : SmallestDenserDirectPlane);
    }
}
