using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// A training-mode batch norm over a contiguous (N, C, H, W) float32 CPU tensor as an autograd function, forward and
/// backward through <see cref="BatchNormPasses"/>: y = (x - mean) / sqrt(var + eps) · weight + bias with the batch's
/// own statistics, optionally followed by a ReLU or ReLU6, and the input, weight and bias gradients that libtorch's batch
/// norm (and activation) give. With an activation the backward pass recomputes its mask from the input instead of keeping
/// the output.
/// </summary>
/// <remarks>
/// Arguments to <c>apply</c>: input, weight (C), bias (C), eps, the <see cref="Activation"/> that follows, a <see cref="double"/>[2][]
/// that receives the batch mean and biased variance (the caller updates the running statistics from them), and
/// optionally a residual (N, C, H, W), added before the activation (a residual block's shortcut: act(bn(x) + residual)),
/// whose gradient is then returned too. The sums are those of the batch norm, an addition and the activation run apart,
/// bit for bit.
/// </remarks>
internal sealed class BatchNormFunction : SingleTensorFunction<BatchNormFunction>
{
    private const string StateKey = "batch norm", InputGradientKey = "input needs a gradient";

    /// <inheritdoc />
    public override string Name => nameof(BatchNormFunction);

    /// <inheritdoc />
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (input, weight, bias, eps, activation) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (double)vars[3], (Activation)vars[4]);
        var residual = vars.Length > 6 ? (Tensor)vars[6] : null;
        var (output, state) = BatchNormPasses.Forward(input, weight, bias, eps, activation, (double[][])vars[5], residual);
        ctx.save_for_backward(residual is null ? new List<Tensor> { input } : new List<Tensor> { input, residual });
        ctx.save_data(StateKey, state);
        ctx.save_data(InputGradientKey, input.requires_grad);
        return output;
    }

    /// <inheritdoc />
    public override unsafe List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        var saved = ctx.get_saved_variables();
        var (input, residual) = (saved[0], saved.Count > 1 ? saved[1] : null);
        using var upstream = grad_output.contiguous();
        // With a residual, the activation's gradient (masked by bn(x) + residual) is the residual's too.
        var gated = residual is null ? null : empty_like(input);
        var gradient = BatchNormPasses.Backward(input, upstream, (BatchNormState)ctx.get_data(StateKey), residual, gated);
        Tensor? inputGradient = null;
        if ((bool)ctx.get_data(InputGradientKey))
        {
            inputGradient = empty_like(input);
            gradient.InputGradient(TensorMemory.Floats(inputGradient), 0, (int)input.shape[0], get_num_threads());
        }

        var gradients = new List<Tensor> { inputGradient!, tensor(gradient.Weight), tensor(gradient.Bias), null!, null!, null! };
        if (gated is not null)
        {
            gradients.Add(gated);
        }

        saved.ForEach(t => t.Dispose());
        return GradientHandOver.Return(gradients, grad_output);
    }
}

/// <summary>The per-channel values a training batch norm's forward pass computes and its backward pass reads.</summary>
/// <param name="Mean">The batch mean.</param>
/// <param name="InverseStd">1 / sqrt(biased variance + eps).</param>
/// <param name="Scale">weight · InverseStd: the forward's multiplier, with which the backward pass recomputes the activation's mask.</param>
/// <param name="Gamma">The weight.</param>
/// <param name="Beta">The bias.</param>
/// <param name="Activation">The activation after the batch norm.</param>
internal sealed record BatchNormState(float[] Mean, float[] InverseStd, float[] Scale, float[] Gamma, float[] Beta, Activation Activation);

/// <summary>
/// A training-mode batch norm's forward and backward passes over contiguous (N, C, H, W) float32 CPU tensors through
/// <see cref="BatchNormKernels"/>, for the autograd functions that run one (<see cref="BatchNormFunction"/>, and
/// <see cref="ConvNormFunction"/> after its convolution).
/// </summary>
internal static unsafe class BatchNormPasses
{
    /// <summary>
    /// act(bn(<paramref name="input"/>) [+ <paramref name="residual"/>]) with the batch's statistics, which go to
    /// <paramref name="statistics"/> (mean and biased variance, in double), and the state the backward pass needs.
    /// </summary>
    public static (Tensor Output, BatchNormState State) Forward(Tensor input, Tensor weight, Tensor bias, double eps, Activation activation,
        double[][] statistics, Tensor? residual)
    {
        var (batch, channels, plane) = Shape(input);
        int threads = get_num_threads();
        var (mean, variance) = (new double[channels], new double[channels]);
        BatchNormKernels.Statistics(TensorMemory.Floats(input), batch, channels, plane, mean, variance, threads);
        using var weightValues = weight.detach().contiguous();
        using var biasValues = bias.detach().contiguous();
        var gamma = weightValues.data<float>().ToArray();
        var beta = biasValues.data<float>().ToArray();
        var (meanF, inverseStd, scale) = (new float[channels], new float[channels], new float[channels]);
        for (int c = 0; c < channels; c++)
        {
            double inv = 1 / Math.Sqrt(variance[c] + eps);
            (meanF[c], inverseStd[c]) = ((float)mean[c], (float)inv);
            scale[c] = (float)(gamma[c] * inv);
        }

        var output = empty_like(input);
        float* x = TensorMemory.Floats(input), y = TensorMemory.Floats(output), r = residual is null ? null : TensorMemory.Floats(residual);
        switch (activation)
        {
            case Activation.ReLU:
                BatchNormKernels.Normalize<Relu>(x, y, batch, channels, plane, meanF, scale, beta, threads, r);
                break;
            case Activation.ReLU6:
                BatchNormKernels.Normalize<Relu6>(x, y, batch, channels, plane, meanF, scale, beta, threads, r);
                break;
            default:
                BatchNormKernels.Normalize<Identity>(x, y, batch, channels, plane, meanF, scale, beta, threads, r);
                break;
        }

        (statistics[0], statistics[1]) = (mean, variance);
        return (output, new BatchNormState(meanF, inverseStd, scale, gamma, beta, activation));
    }

    /// <summary>
    /// The weight and bias gradients for the output gradient <paramref name="upstream"/>, passed back through the
    /// activation (its mask recomputed from the input with the forward pass's scale, so that it is the forward output's
    /// exactly), and the input gradient as a pass to run. With a <paramref name="residual"/>, the mask is act(bn(x) +
    /// residual)'s and the gated gradient (the residual's) goes to <paramref name="gated"/>, from which the input gradient
    /// is taken as is. The tensors must outlive the returned pass.
    /// </summary>
    public static BatchNormGradient Backward(Tensor input, Tensor upstream, BatchNormState state, Tensor? residual, Tensor? gated)
    {
        var (batch, channels, plane) = Shape(input);
        float* x = TensorMemory.Floats(input), dy = TensorMemory.Floats(upstream);
        float* r = residual is null ? null : TensorMemory.Floats(residual), g = gated is null ? null : TensorMemory.Floats(gated);
        var (sumDy, sumDyX) = (new double[channels], new double[channels]);
        var (mean, scale, beta) = (state.Mean, state.Scale, state.Beta);
        int threads = get_num_threads();
        switch (state.Activation)
        {
            case Activation.ReLU:
                BatchNormKernels.GradientSums<Relu>(x, dy, batch, channels, plane, mean, scale, beta, sumDy, sumDyX, threads, r, g);
                break;
            case Activation.ReLU6:
                BatchNormKernels.GradientSums<Relu6>(x, dy, batch, channels, plane, mean, scale, beta, sumDy, sumDyX, threads, r, g);
                break;
            default:
                BatchNormKernels.GradientSums<Identity>(x, dy, batch, channels, plane, mean, scale, beta, sumDy, sumDyX, threads, r, g);
                break;
        }

        double count = (double)batch * plane;
        var (weightGradient, biasGradient) = (new float[channels], new float[channels]);
        var (a, b, k) = (new float[channels], new float[channels], new float[channels]);
        for (int c = 0; c < channels; c++)
        {
            double inv = state.InverseStd[c], gamma = state.Gamma[c];
            weightGradient[c] = (float)(sumDyX[c] * inv);
            biasGradient[c] = (float)sumDy[c];
            // dx = g·inv·(dy - Σdy/M - (x - mean)·inv²·Σdy(x - mean)/M), as dy·a + (x - mean)·b + k (dy through the activation).
            a[c] = (float)(gamma * inv);
            b[c] = (float)(-gamma * inv * inv * inv * sumDyX[c] / count);
            k[c] = (float)(-gamma * inv * sumDy[c] / count);
        }

        // The gated gradient has been through the activation already.
        return new BatchNormGradient(weightGradient, biasGradient, x, g == null ? dy : g, g == null ? state.Activation : Activation.None,
            channels, plane, state, a, b, k);
    }

    private static (int Batch, int Channels, int Plane) Shape(Tensor input) =>
        ((int)input.shape[0], (int)input.shape[1], checked((int)(input.shape[2] * input.shape[3])));
}

/// <summary>
/// A batch norm's weight and bias gradients, and its input gradient as a pass over batch items: dx = g · a[c] + (x -
/// mean[c]) · b[c] + k[c], with g the output gradient through the activation (<see cref="BatchNormPasses.Backward"/>).
/// </summary>
internal sealed unsafe class BatchNormGradient(float[] weight, float[] bias, float* input, float* upstream, Activation activation, int channels,
    int plane, BatchNormState state, float[] a, float[] b, float[] k)
{
    /// <summary>The weight gradient.</summary>
    public float[] Weight => weight;

    /// <summary>The bias gradient.</summary>
    public float[] Bias => bias;

    /// <summary>Writes the input gradient of items [<paramref name="first"/>, first + <paramref name="count"/>) to <paramref name="into"/> (item <paramref name="first"/>'s place).</summary>
    public void InputGradient(float* into, int first, int count, int threads)
    {
        long offset = (long)first * channels * plane;
        float* x = input + offset, g = upstream + offset;
        var (mean, scale, shift) = (state.Mean, state.Scale, state.Beta);
        switch (activation)
        {
            case Activation.ReLU:
                BatchNormKernels.InputGradient<Relu>(x, g, into, count, channels, plane, mean, scale, shift, a, b, k, threads);
                break;
            case Activation.ReLU6:
                BatchNormKernels.InputGradient<Relu6>(x, g, into, count, channels, plane, mean, scale, shift, a, b, k, threads);
                break;
            default:
                BatchNormKernels.InputGradient<Identity>(x, g, into, count, channels, plane, mean, scale, shift, a, b, k, threads);
                break;
        }
    }
}
