using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace XNet.MLNet.Training;

/// <summary>
/// TorchSharp's SGD and Adam with their numbers passed to libtorch as scalars that stay alive until each call returns.
/// </summary>
/// <remarks>
/// The classes keep TorchSharp's names, <c>SGD</c> and <c>Adam</c>: an optimiser's saved state starts with its class name
/// and loads only into a class of that name, so checkpoints stay interchangeable with runs that used TorchSharp's own.
/// </remarks>
internal static class KeptScalarOptimizers
{
    /// <summary>
    /// TorchSharp's SGD (momentum, dampening, weight decay, Nesterov), the same arithmetic in the same order, with its numbers
    /// passed to libtorch as scalars that stay alive until each call returns.
    /// </summary>
    /// <remarks>
    /// TorchSharp's own step writes <c>grad.add(param, weight_decay)</c> and the like: each number becomes a native scalar that
    /// only the finalizer frees, and a garbage collection started by another thread during the native call can free it while
    /// libtorch still reads it (libtorch then stops in its "toFloat"/"toLong" check, or reads a wrong value). The state, its
    /// saved form and the results are TorchSharp's SGD's, bit for bit.
    /// </remarks>
    internal sealed class SGD(IEnumerable<Parameter> parameters, double learningRate, double momentum, double dampening,
        double weightDecay, bool nesterov)
        : TorchSharp.Modules.SGD(parameters, learningRate, momentum, dampening, weightDecay, nesterov)
    {
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            double momentum = options.momentum!.Value, weightDecay = options.weight_decay!.Value;
            bool nesterov = options.nesterov!.Value;
            double rate = options.LearningRate!.Value;
            using Scalar decay = weightDecay, keep = momentum, take = 1 - options.dampening!.Value;
            using Scalar stepSize = options.maximize!.Value ? rate : -rate;
            foreach (var parameter in group.Parameters)
            {
                var gradient = parameter.grad;
                if (gradient is null)
                {
                    continue;
                }

                if (weightDecay != 0)
                {
                    gradient = gradient.add(parameter, decay);
                }

                if (momentum != 0)
                {
                    var state = (State)_state[parameter.Handle];
                    var buffer = state.momentum_buffer;
                    if (buffer is null)
                    {
                        buffer = state.momentum_buffer = gradient.clone().detach().DetachFromDisposeScope();
                    }
                    else
                    {
                        buffer.mul_(keep).add_(gradient, take);
                    }

                    gradient = nesterov ? gradient.add(buffer, keep) : buffer;
                }

                parameter.add_(gradient, stepSize);
            }
        }, closure);
    }

    /// <summary>
    /// TorchSharp's Adam (weight decay, AMSGrad), the same arithmetic in the same order, with its numbers passed to libtorch as
    /// scalars that stay alive until each call returns (see <see cref="SGD"/>).
    /// </summary>
    internal sealed class Adam(IEnumerable<Parameter> parameters, double learningRate, double weightDecay)
        : TorchSharp.Modules.Adam(parameters, learningRate, weight_decay: weightDecay)
    {
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var options = group.Options;
            double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, weightDecay = options.weight_decay!.Value;
            double rate = options.LearningRate!.Value;
            bool amsgrad = options.amsgrad!.Value, maximize = options.maximize!.Value;
            using Scalar decay = weightDecay, keepMean = beta1, takeMean = 1 - beta1, keepSquare = beta2, takeSquare = 1 - beta2;
            using Scalar eps = options.eps!.Value, one = 1;
            foreach (var parameter in group.Parameters)
            {
                var gradient = parameter.grad;
                if (gradient is null)
                {
                    continue;
                }

                if (maximize)
                {
                    gradient = -gradient;
                }

                var state = (State)_state[parameter.Handle];
                state.step++;
                double meanCorrection = 1 - Math.Pow(beta1, state.step);
                double squareCorrection = 1 - Math.Pow(beta2, state.step);
                if (weightDecay != 0)
                {
                    gradient = gradient.add(parameter, decay);
                }

                state.exp_avg.mul_(keepMean).add_(gradient, takeMean);
                state.exp_avg_sq.mul_(keepSquare).addcmul_(gradient, gradient.conj(), takeSquare);
                if (amsgrad)
                {
                    var previous = state.max_exp_avg_sq;
                    state.max_exp_avg_sq = maximum(previous, state.exp_avg_sq).DetachFromDisposeScope();
                    previous.Dispose();
                }

                using Scalar root = Math.Sqrt(squareCorrection), stepSize = -(rate / meanCorrection);
                var denominator = (amsgrad ? state.max_exp_avg_sq : state.exp_avg_sq).sqrt().div(root).add_(eps, one);
                parameter.addcdiv_(state.exp_avg, denominator, stepSize);
            }
        }, closure);
    }
}
