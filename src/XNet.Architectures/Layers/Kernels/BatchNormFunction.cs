using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// A training-mode batch norm over a contiguous (N, C, H, W) float32 CPU tensor as an autograd function, forward and
/// backward through <see cref="BatchNormKernels"/>: y = (x - mean) / sqrt(var + eps) · weight + bias with the batch's
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
    private const string MeanKey = "mean", InverseStdKey = "inverse std", WeightKey = "weight", ShiftKey = "bias", ActivationKey = "activation";
    private const string ScaleKey = "scale";
    private const string InputGradientKey = "input needs a gradient", ResidualKey = "residual";

    /// <inheritdoc />
    public override string Name => nameof(BatchNormFunction);

    /// <inheritdoc />
    public override unsafe Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (input, weight, bias, eps, activation) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (double)vars[3], (Activation)vars[4]);
        var statistics = (double[][])vars[5];
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

        var residual = vars.Length > 6 ? (Tensor)vars[6] : null;
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
        ctx.save_for_backward(residual is null ? new List<Tensor> { input } : new List<Tensor> { input, residual });
        ctx.save_data(ResidualKey, residual is not null);
        ctx.save_data(MeanKey, meanF);
        ctx.save_data(ScaleKey, scale); // the backward pass recomputes the activation's mask with the forward's own values
        ctx.save_data(InverseStdKey, inverseStd);
        ctx.save_data(WeightKey, gamma);
        ctx.save_data(ShiftKey, beta);
        ctx.save_data(ActivationKey, activation);
        ctx.save_data(InputGradientKey, input.requires_grad);
        return output;
    }

    /// <inheritdoc />
    public override unsafe List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        var saved = ctx.get_saved_variables();
        var input = saved[0];
        var (mean, inverseStd, gamma) = ((float[])ctx.get_data(MeanKey), (float[])ctx.get_data(InverseStdKey), (float[])ctx.get_data(WeightKey));
        var (beta, activation, scale) = ((float[])ctx.get_data(ShiftKey), (Activation)ctx.get_data(ActivationKey), (float[])ctx.get_data(ScaleKey));
        using var upstream = grad_output.contiguous();
        float* x = TensorMemory.Floats(input), dy = TensorMemory.Floats(upstream);
        bool inputNeedsGradient = (bool)ctx.get_data(InputGradientKey);
        if ((bool)ctx.get_data(ResidualKey))
        {
            // The activation's gradient, masked by bn(x) + residual, is the residual's; the batch norm's backward takes it as is.
            var gated = empty_like(input);
            float* g = TensorMemory.Floats(gated), r = TensorMemory.Floats(saved[1]);
            var (dx, dw, db) = activation switch
            {
                Activation.ReLU => Gradients<Relu>(input, x, dy, mean, inverseStd, gamma, scale, beta, inputNeedsGradient, r, g),
                Activation.ReLU6 => Gradients<Relu6>(input, x, dy, mean, inverseStd, gamma, scale, beta, inputNeedsGradient, r, g),
                _ => Gradients<Identity>(input, x, dy, mean, inverseStd, gamma, scale, beta, inputNeedsGradient, r, g),
            };
            saved.ForEach(t => t.Dispose());
            return GradientHandOver.Return(new List<Tensor> { dx!, tensor(dw), tensor(db), null!, null!, null!, gated }, grad_output);
        }

        var (inputGradient, weightGradient, biasGradient) = activation switch
        {
            Activation.ReLU => Gradients<Relu>(input, x, dy, mean, inverseStd, gamma, scale, beta, inputNeedsGradient),
            Activation.ReLU6 => Gradients<Relu6>(input, x, dy, mean, inverseStd, gamma, scale, beta, inputNeedsGradient),
            _ => Gradients<Identity>(input, x, dy, mean, inverseStd, gamma, scale, beta, inputNeedsGradient),
        };

        saved.ForEach(t => t.Dispose());
        return GradientHandOver.Return(new List<Tensor> { inputGradient!, tensor(weightGradient), tensor(biasGradient), null!, null!, null! }, grad_output);
    }

    /// <summary>
    /// The input gradient (null unless <paramref name="inputNeedsGradient"/>), weight gradient and bias gradient, with the
    /// upstream gradient passed back through <typeparamref name="TActivation"/> (its mask recomputed from the input with
    /// the forward pass's <paramref name="scale"/>, so that it is the forward output's exactly). With a
    /// <paramref name="residual"/>, the mask is act(bn(x) + residual)'s and the gated gradient goes to
    /// <paramref name="gated"/>, from which the input gradient is taken as is.
    /// </summary>
    private static unsafe (Tensor? Input, float[] Weight, float[] Bias) Gradients<TActivation>(Tensor input, float* x, float* dy,
        float[] mean, float[] inverseStd, float[] gamma, float[] scale, float[] beta, bool inputNeedsGradient, float* residual = null,
        float* gated = null)
        where TActivation : struct, IActivation
    {
        var (batch, channels, plane) = Shape(input);
        int threads = get_num_threads();
        var (sumDy, sumDyX) = (new double[channels], new double[channels]);
        BatchNormKernels.GradientSums<TActivation>(x, dy, batch, channels, plane, mean, scale, beta, sumDy, sumDyX, threads, residual, gated);

        double count = (double)batch * plane;
        var (weightGradient, biasGradient) = (new float[channels], new float[channels]);
        var (a, b, k) = (new float[channels], new float[channels], new float[channels]);
        for (int c = 0; c < channels; c++)
        {
            double inv = inverseStd[c], g = gamma[c];
            weightGradient[c] = (float)(sumDyX[c] * inv);
            biasGradient[c] = (float)sumDy[c];
            // dx = g·inv·(dy - Σdy/M - (x - mean)·inv²·Σdy(x - mean)/M), as dy·a + (x - mean)·b + k (dy through the activation).
            a[c] = (float)(g * inv);
            b[c] = (float)(-g * inv * inv * inv * sumDyX[c] / count);
            k[c] = (float)(-g * inv * sumDy[c] / count);
        }

        if (!inputNeedsGradient)
        {
            return (null, weightGradient, biasGradient);
        }

        var inputGradient = empty_like(input);
        float* dx = TensorMemory.Floats(inputGradient);
        if (gated == null)
        {
            BatchNormKernels.InputGradient<TActivation>(x, dy, dx, batch, channels, plane, mean, scale, beta, a, b, k, threads);
        }
        else
        {
            BatchNormKernels.InputGradient<Identity>(x, gated, dx, batch, channels, plane, mean, scale, beta, a, b, k, threads);
        }

        return (inputGradient, weightGradient, biasGradient);
    }

    private static (int Batch, int Channels, int Plane) Shape(Tensor input) =>
        ((int)input.shape[0], (int)input.shape[1], checked((int)(input.shape[2] * input.shape[3])));
}
