using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// A training-mode batch norm over a contiguous (N, C, H, W) float32 CPU tensor as an autograd function, forward and
/// backward through <see cref="BatchNormKernels"/>: y = (x - mean) / sqrt(var + eps) · weight + bias with the batch's
/// own statistics, and the input, weight and bias gradients that libtorch's batch norm gives.
/// </summary>
/// <remarks>
/// Arguments to <c>apply</c>: input, weight (C), bias (C), eps, and a <see cref="double"/>[2][] that receives the batch
/// mean and biased variance (the caller updates the running statistics from them).
/// </remarks>
internal sealed class BatchNormFunction : SingleTensorFunction<BatchNormFunction>
{
    private const string MeanKey = "mean", InverseStdKey = "inverse std", WeightKey = "weight", InputGradientKey = "input needs a gradient";

    /// <inheritdoc />
    public override string Name => nameof(BatchNormFunction);

    /// <inheritdoc />
    public override unsafe Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var (input, weight, bias, eps, statistics) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (double)vars[3], (double[][])vars[4]);
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
        BatchNormKernels.Normalize(TensorMemory.Floats(input), TensorMemory.Floats(output), batch, channels, plane, meanF, scale, beta, threads);
        (statistics[0], statistics[1]) = (mean, variance);
        ctx.save_for_backward(new List<Tensor> { input });
        ctx.save_data(MeanKey, meanF);
        ctx.save_data(InverseStdKey, inverseStd);
        ctx.save_data(WeightKey, gamma);
        ctx.save_data(InputGradientKey, input.requires_grad);
        return output;
    }

    /// <inheritdoc />
    public override unsafe List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        var saved = ctx.get_saved_variables();
        var input = saved[0];
        var (mean, inverseStd, gamma) = ((float[])ctx.get_data(MeanKey), (float[])ctx.get_data(InverseStdKey), (float[])ctx.get_data(WeightKey));
        var (batch, channels, plane) = Shape(input);
        int threads = get_num_threads();
        using var upstream = grad_output.contiguous();
        var (sumDy, sumDyX) = (new double[channels], new double[channels]);
        BatchNormKernels.GradientSums(TensorMemory.Floats(input), TensorMemory.Floats(upstream), batch, channels, plane, mean, sumDy, sumDyX, threads);

        double count = (double)batch * plane;
        var (weightGradient, biasGradient) = (new float[channels], new float[channels]);
        var (a, b, k) = (new float[channels], new float[channels], new float[channels]);
        for (int c = 0; c < channels; c++)
        {
            double inv = inverseStd[c], g = gamma[c];
            weightGradient[c] = (float)(sumDyX[c] * inv);
            biasGradient[c] = (float)sumDy[c];
            // dx = g·inv·(dy - Σdy/M - (x - mean)·inv²·Σdy(x - mean)/M), as dy·a + (x - mean)·b + k.
            a[c] = (float)(g * inv);
            b[c] = (float)(-g * inv * inv * inv * sumDyX[c] / count);
            k[c] = (float)(-g * inv * sumDy[c] / count);
        }

        Tensor? inputGradient = null;
        if ((bool)ctx.get_data(InputGradientKey))
        {
            inputGradient = empty_like(input);
            BatchNormKernels.InputGradient(TensorMemory.Floats(input), TensorMemory.Floats(upstream), TensorMemory.Floats(inputGradient), batch,
                channels, plane, mean, a, b, k, threads);
        }

        saved.ForEach(t => t.Dispose());
        return new List<Tensor> { inputGradient!, tensor(weightGradient), tensor(biasGradient), null!, null! };
    }

    private static (int Batch, int Channels, int Plane) Shape(Tensor input) =>
        ((int)input.shape[0], (int)input.shape[1], checked((int)(input.shape[2] * input.shape[3])));
}
