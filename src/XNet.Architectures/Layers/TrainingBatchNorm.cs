using TorchSharp;
using TorchSharp.Modules;
using XNet.Architectures.Layers.Kernels;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// Runs a <see cref="BatchNorm2d"/> module: in training mode on float32 CPU batches through the vectorised
/// <see cref="BatchNormFunction"/> (libtorch's CPU batch norm gathers its statistics with scalar loops, 14 % of a ResNet-20
/// training step on the 2-core machine), otherwise through the module itself.
/// </summary>
/// <remarks>
/// The module keeps its parameters and buffers, so state dicts, ONNX export and cost counting see an ordinary batch
/// norm; the running statistics are updated as PyTorch does (momentum, or the cumulative average when momentum is null;
/// the unbiased variance). Forward hooks registered on the module do not run on the fast path.
/// </remarks>
internal static class TrainingBatchNorm
{
    /// <summary>
    /// <paramref name="activation"/>(the module's output for <paramref name="input"/> + <paramref name="residual"/>), (N, C, H, W);
    /// without a residual, <paramref name="activation"/>(the module's output). The addition and the activation run in the
    /// same pass where the fast path applies (the activation's mask recomputed in the backward pass).
    /// </summary>
    public static Tensor Call(BatchNorm2d norm, Tensor input, Activation activation = Activation.None, Tensor? residual = null)
    {
        if (input.dim() != 4 || input.device_type != DeviceType.CPU || input.dtype != ScalarType.Float32 || !input.is_contiguous() ||
            !RunsVectorised(norm, input.shape, residual))
        {
            return Unfused(norm, input, activation, residual);
        }

        var statistics = new double[2][];
        var output = residual is null
            ? BatchNormFunction.apply(input, norm.weight!, norm.bias!, norm.eps, activation, statistics)
            : BatchNormFunction.apply(input, norm.weight!, norm.bias!, norm.eps, activation, statistics, residual);
        Count(norm, statistics, input.shape);
        return output;
    }

    /// <summary>
    /// Whether a training batch norm over a contiguous float32 CPU input of <paramref name="shape"/> (N, C, H, W) runs the
    /// vectorised kernels (<see cref="BatchNormPasses"/>): the module in training mode with its affine parameters and
    /// running statistics, float32 on the CPU, more than one value per channel, and a residual (if any) of the input's
    /// shape, contiguous float32 on the CPU.
    /// </summary>
    public static bool RunsVectorised(BatchNorm2d norm, long[] shape, Tensor? residual) =>
        norm.training && norm.weight is not null && norm.bias is not null && norm.running_mean is not null && norm.running_var is not null &&
        norm.num_batches_tracked is not null && shape.Length == 4 && shape[1] == norm.num_features && shape[0] * shape[2] * shape[3] > 1 &&
        norm.weight.device_type == DeviceType.CPU && norm.weight.dtype == ScalarType.Float32 &&
        (residual is null || (residual.shape.SequenceEqual(shape) && residual.device_type == DeviceType.CPU &&
                              residual.dtype == ScalarType.Float32 && residual.is_contiguous()));

    /// <summary>
    /// Counts a batch the vectorised kernels normalised (<paramref name="statistics"/>: its mean and biased variance, over
    /// an input of <paramref name="shape"/>) in the module's batch counter and running statistics.
    /// </summary>
    public static void Count(BatchNorm2d norm, double[][] statistics, long[] shape) =>
        UpdateRunningStatistics(norm, statistics[0], statistics[1], shape[0] * shape[2] * shape[3]);

    /// <summary>
    /// <see cref="Call"/>'s result as separate operations: libtorch's batch norm (<see cref="Libtorch"/>), then the addition
    /// of <paramref name="residual"/> and <paramref name="activation"/>, each a pass of its own.
    /// </summary>
    public static Tensor Unfused(BatchNorm2d norm, Tensor input, Activation activation = Activation.None, Tensor? residual = null)
    {
        var normalised = residual is null ? Libtorch(norm, input) : Libtorch(norm, input).Plus(residual);
        return activation switch
        {
            Activation.ReLU => nn.functional.relu(normalised),
            Activation.ReLU6 => nn.functional.relu6(normalised),
            _ => normalised,
        };
    }

    /// <summary>
    /// The module's own forward pass, libtorch's batch norm with the same arguments, except that the batch counter is
    /// advanced with scalars held until the call returns (TorchSharp's module adds a temporary 1, see <see cref="TensorSum"/>).
    /// </summary>
    public static Tensor Libtorch(BatchNorm2d norm, Tensor input)
    {
        if (input.ndim != 4)
        {
            throw new ArgumentException($"expected 4D input, but got {input.ndim}D input.");
        }

        double momentum = norm.training && norm.track_running_stats && norm.num_batches_tracked is not null
            ? CountBatch(norm)
            : norm.momentum ?? 0.0;

        bool batchStatistics = norm.training || (norm.running_mean is null && norm.running_var is null);
        bool useRunning = !norm.training || norm.track_running_stats;
        return nn.functional.batch_norm(input, useRunning ? norm.running_mean : null, useRunning ? norm.running_var : null,
            norm.weight, norm.bias, batchStatistics, momentum, norm.eps);
    }

    /// <summary>
    /// Counts a training batch in <c>num_batches_tracked</c> and returns the running statistics' update factor: the
    /// momentum, or without one the cumulative average's 1 / batches.
    /// </summary>
    private static double CountBatch(BatchNorm2d norm)
    {
        norm.num_batches_tracked!.Increment();
        return norm.momentum ?? 1.0 / norm.num_batches_tracked!.item<long>();
    }

    private static void UpdateRunningStatistics(BatchNorm2d norm, double[] mean, double[] variance, long count)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double factor = CountBatch(norm);
        using var batchMean = tensor(mean.Select(m => (float)m).ToArray());
        using var unbiased = tensor(variance.Select(v => (float)(v * count / (count - 1))).ToArray());
        using Scalar keep = 1 - factor, take = factor; // held until the calls return (see TensorSum)
        norm.running_mean!.mul_(keep).add_(batchMean, take);
        norm.running_var!.mul_(keep).add_(unbiased, take);
    }
}

/// <summary>The activation that follows a batch norm (<see cref="TrainingBatchNorm"/>, <see cref="Conv2dNormActivation"/>).</summary>
internal enum Activation
{
    /// <summary>None: the batch norm's output as it is.</summary>
    None,

    /// <summary>max(0, x).</summary>
    ReLU,

    /// <summary>min(max(0, x), 6) (MobileNet).</summary>
    ReLU6,
}
