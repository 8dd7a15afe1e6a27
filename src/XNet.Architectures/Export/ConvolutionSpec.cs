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
            double scale = norm.Scale[o] / Math.Sqrt(norm.Variance[o] + (double)norm.Epsilon);
            for (long i = o * perChannel; i < (o + 1) * perChannel; i++)
            {
                weight[i] = (float)(weight[i] * scale);
            }

            bias[o] = (float)(((Bias?[o] ?? 0) - (double)norm.Mean[o]) * scale + norm.Bias[o]);
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
internal sealed record BatchNormSpec(string Path, float[] Scale, float[] Bias, float[] Mean, float[] Variance, float Epsilon);
