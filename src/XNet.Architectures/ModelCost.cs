using TorchSharp;
using static TorchSharp.torch;

namespace XNet.Architectures;

/// <summary>
/// What a model costs at an input size: its effective parameters and the multiply-accumulates of one forward pass.
/// </summary>
/// <remarks>
/// Both are read from the module tree, not from names. Expander and grouped layers hold only their present connections,
/// so the parameter count is the effective one (BatchNorm affine parameters and classifier included; the graph index
/// tables are buffers, not parameters). MACs are counted for every layer with a weight matrix or kernel (convolutions,
/// linear layers and their expander and grouped forms) as weight elements x output positions, measured with forward
/// hooks on one image; BatchNorm, activations, pooling and additions are not counted, as in the paper and torchvision.
/// </remarks>
/// <param name="Parameters">Effective trainable parameters.</param>
/// <param name="MultiplyAccumulates">Multiply-accumulates of one image's forward pass.</param>
/// <param name="Input">The input shape the MACs were measured at.</param>
public sealed record ModelCost(long Parameters, long MultiplyAccumulates, ImageShape Input)
{
    /// <summary>Measures <paramref name="model"/> at <paramref name="input"/> (one forward pass of a zero image, in evaluation mode).</summary>
    /// <exception cref="InvalidOperationException">
    /// When a weighted layer did not run through <c>call</c> (its cost would go uncounted), naming the layer.
    /// </exception>
    public static ModelCost Measure(nn.Module<Tensor, Tensor> model, ImageShape input)
    {
        ArgumentNullException.ThrowIfNull(model);
        input.Validate("ModelCost input");
        long parameters = model.parameters().Sum(p => p.numel());
        long macs = 0;
        var weighted = model.named_modules()
            .Select(m => (m.name, m.module, weight: m.module.named_parameters(recurse: false).FirstOrDefault(p => p.name == "weight").parameter))
            .Where(m => m.weight is not null && m.weight.dim() >= 2)
            .ToList();
        var counted = new HashSet<string>();
        var removers = new List<Action>();
        try
        {
            foreach (var (name, module, weight) in weighted)
            {
                if (module is not nn.Module<Tensor, Tensor> layer)
                {
                    throw new InvalidOperationException($"ModelCost: layer '{name}' ({module.GetType().Name}) is not a tensor-to-tensor module.");
                }

                long weights = weight!.numel();
                var remover = layer.register_forward_hook((_, _, output) =>
                {
                    long positions = output.numel() / (output.shape[0] * output.shape[1]);
                    macs += weights * positions;
                    counted.Add(name);
                    return output;
                });
                removers.Add(remover.remove);
            }

            // Evaluation mode with gradients on: without them, conv units set to fold their batch norms
            // (InferenceFolding) would skip the convolutions' own calls, whose hooks count the MACs.
            bool wasTraining = model.training;
            model.eval();
            using (enable_grad())
            using (var scope = NewDisposeScope())
            {
                var parameter = model.parameters().FirstOrDefault();
                model.call(zeros(new long[] { 1, input.Channels, input.Height, input.Width }, device: parameter?.device));
            }

            model.train(wasTraining);
        }
        finally
        {
            removers.ForEach(remove => remove());
        }

        var missed = weighted.Select(w => w.name).Where(n => !counted.Contains(n)).ToList();
        if (missed.Count > 0)
        {
            throw new InvalidOperationException(
                $"ModelCost: layer '{missed[0]}' did not run through Module.call (so its forward hook never fired); its MACs would go uncounted.");
        }

        return new ModelCost(parameters, macs, input);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Parameters:N0} params, {MultiplyAccumulates / 1e6:N1} M MACs at {Input}";
}
