namespace XNet.MLNet.Training;

/// <summary>The optimiser of a training run (the paper's reference code's <c>--optimType</c>).</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with <see cref="XNetTrainer.Options.Momentum"/>, optional Nesterov momentum and L2 weight decay.</summary>
    Sgd,

    /// <summary>Adam (betas 0.9 and 0.999, eps 1e-8) with L2 weight decay added to the gradient; momentum settings are ignored.</summary>
    Adam,
}
