using TorchSharp;
using XNet.Architectures.Export;
using static TorchSharp.torch;

namespace XNet.Architectures.Layers;

/// <summary>
/// Per-channel standardisation, (x - mean) / std, as a module with <c>mean</c> and <c>std</c> buffers, so a saved
/// classifier carries its own preprocessing and takes raw pixels.
/// </summary>
public sealed class Normalize : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Tensor mean;
    private readonly Tensor std;

    /// <summary>Creates the layer; <paramref name="mean"/> and <paramref name="std"/> have one entry per channel.</summary>
    /// <exception cref="ArgumentException">When the lengths differ or a standard deviation is not positive.</exception>
    public Normalize(IReadOnlyList<float> mean, IReadOnlyList<float> std)
        : base(nameof(Normalize))
    {
        if (mean.Count == 0 || mean.Count != std.Count || std.Any(s => !(s > 0)) || mean.Any(m => !float.IsFinite(m)))
        {
            throw new ArgumentException(
                $"Normalize: expected one finite mean and one positive std per channel, got mean [{string.Join(", ", mean)}] and std [{string.Join(", ", std)}].");
        }

        using var means = tensor(mean.ToArray()); // named, so that it outlives the view taken from it
        using var deviations = tensor(std.ToArray());
        this.mean = means.view(1, -1, 1, 1);
        this.std = deviations.view(1, -1, 1, 1);
        register_buffer(nameof(mean), this.mean);
        register_buffer(nameof(std), this.std);
    }

    /// <summary>Per-channel means.</summary>
    public float[] Mean => Values(mean);

    /// <summary>Per-channel standard deviations.</summary>
    public float[] Std => Values(std);

    private static float[] Values(Tensor buffer)
    {
        using var host = buffer.cpu(); // disposed here, not left to the finalizer thread
        return host.data<float>().ToArray();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        return (input - mean).div_(std);
    }

    /// <inheritdoc />
    string IOnnxExportable.Export(OnnxGraphBuilder graph, string input, string path)
    {
        long channels = mean.numel();
        string x = graph.Sub(input, graph.Constant(OnnxExport.Child(path, "mean"), Mean, 1, channels, 1, 1));
        return graph.Div(x, graph.Constant(OnnxExport.Child(path, "std"), Std, 1, channels, 1, 1));
    }
}
