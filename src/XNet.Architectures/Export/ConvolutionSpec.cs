using TorchSharp.Modules;

namespace XNet.Architectures.Export;

/// <summary>
/// A convolution ready to write: its weight and optional bias as float arrays, its attributes and, for the Gather form of
/// an expander convolution, the input channels to gather first. Batch normalisation can be folded into it.
/// </summary>
/// <param name="Path">The layer's path (names initializers and errors).</param>
/// <param name="Weight">The weight, row-major in <paramref name="WeightShape"/>.</param>
/// <param name="WeightShape">(C_out, C_in / group, kH, kW).</param>
/// <param name="Bias">The bias (C_out), or null.</param>
/// <param name="Strides">Strides (H, W).</param>
/// <param name="Pads">Symmetric zero padding (H, W).</param>
/// <param name="Group">Number of groups.</param>
/// <param name="GatherIndices">Input channels to gather before the convolution (G x D), or null.</param>
internal sealed record ConvolutionSpec(string Path, float[] Weight, long[] WeightShape, float[]? Bias, long[] Strides, long[] Pads,
    long Group, long[]? GatherIndices)
{
    /// <summary>Output channels.</summary>
    public long OutputChannels => WeightShape[0];

    /// <summary>
    /// Folds an evaluation-mode batch normalisation that follows this convolution into it:
    /// w' = w * gamma / sqrt(var + eps) per output channel, b' = (b - mean) * gamma / sqrt(var + eps) + beta.
    /// </summary>
    /// <exception cref="InvalidOperationException">When the channel counts differ; names both layers.</exception>
    public ConvolutionSpec Fold(BatchNormSpec norm)
    {
        if (norm.Mean.Length != OutputChannels)
        {
            throw new InvalidOperationException(
                $"ONNX export: BatchNorm '{norm.Path}' has {norm.Mean.Length} channels but the convolution '{Path}' before it has {OutputChannels}.");
        }

        var weight = (float[])Weight.Clone();
        var bias = new float[OutputChannels];
        long perChannel = Weight.Length / OutputChannels;
        for (int o = 0; o < OutputChannels; o++)
        {
            double scale = norm.Multiplier(o);
            for (long i = o * perChannel; i < (o + 1) * perChannel; i++)
            {
                weight[i] = (float)(weight[i] * scale);
            }

            bias[o] = norm.Shift(o, Bias?[o] ?? 0);
        }

        return this with { Weight = weight, Bias = bias, Path = $"{Path}+{norm.Path}" };
    }
}

/// <summary>An evaluation-mode batch normalisation: y = (x - mean) / sqrt(var + eps) * scale + bias.</summary>
/// <param name="Path">The layer's path.</param>
/// <param name="Scale">gamma (ones when the layer has no affine parameters).</param>
/// <param name="Bias">beta (zeros when the layer has no affine parameters).</param>
/// <param name="Mean">Running mean.</param>
/// <param name="Variance">Running variance.</param>
/// <param name="Epsilon">eps.</param>
internal sealed record BatchNormSpec(string Path, float[] Scale, float[] Bias, float[] Mean, float[] Variance, float Epsilon)
{
    /// <summary>The evaluation-mode values of <paramref name="norm"/> (for the export, and for folded inference).</summary>
    /// <exception cref="NotSupportedException">When it keeps no running statistics (which the export cannot write); names <paramref name="path"/>.</exception>
    public static BatchNormSpec Of(BatchNorm2d norm, string path)
    {
        if (norm.running_mean is null || norm.running_var is null)
        {
            throw new NotSupportedException(
                $"ONNX export: BatchNorm2d '{path}' has no running statistics (track_running_stats = false), so its evaluation-mode output depends on the batch.");
        }

        var mean = OnnxExport.Data(norm.running_mean);
        return new BatchNormSpec(path,
            norm.weight is null ? Enumerable.Repeat(1f, mean.Length).ToArray() : OnnxExport.Data(norm.weight),
            norm.bias is null ? new float[mean.Length] : OnnxExport.Data(norm.bias),
            mean, OnnxExport.Data(norm.running_var), (float)norm.eps);
    }

    /// <summary>What channel <paramref name="c"/> is multiplied by: gamma / sqrt(var + eps).</summary>
    public double Multiplier(int c) => Scale[c] / Math.Sqrt(Variance[c] + (double)Epsilon);

    /// <summary>What channel <paramref name="c"/> of a convolution with bias <paramref name="convolutionBias"/> is shifted by once folded: (b - mean) · multiplier + beta.</summary>
    public float Shift(int c, float convolutionBias) => (float)((convolutionBias - (double)Mean[c]) * Multiplier(c) + Bias[c]);
}
