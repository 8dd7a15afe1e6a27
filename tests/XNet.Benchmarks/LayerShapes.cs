using TorchSharp;
using XNet.Architectures;
using XNet.Architectures.Layers;
using static TorchSharp.torch;

/// <summary>One expander convolution's shape in a zoo model, with the input size it sees at the model's input.</summary>
internal sealed record LayerShape(string Model, string Path, int In, int Out, int Kernel, int Stride, int Padding, int Degree, long Height,
    long Width)
{
    /// <summary>A short label: <c>16-&gt;32 3x3/2 @32</c>.</summary>
    public string Label => $"{In}->{Out} {Kernel}x{Kernel}{(Stride > 1 ? $"/{Stride}" : "")} @{Height}";

    /// <summary>Distinct by channel counts, kernel, stride and input size (the model's first layer of each shape keeps its path).</summary>
    public (int, int, int, int, long) Key => (In, Out, Kernel, Stride, Height);

    /// <summary>
    /// The expander convolutions of a zoo model, in module order, with the input size each sees (one forward pass on a
    /// zero image at <paramref name="input"/>, by default the family's reference input, through forward hooks).
    /// </summary>
    public static List<LayerShape> Of(string model, ImageShape? input = null)
    {
        var family = ModelZoo.FamilyOf(model);
        var shape = input ?? family.Input;
        using var network = ModelZoo.Create(model, shape, family.Classes, seed: 0);
        var shapes = new List<LayerShape>();
        var removers = new List<Action>();
        foreach (var (path, module) in network.named_modules())
        {
            if (module is ExpanderConv2d layer)
            {
                var hook = layer.register_forward_hook((_, input, output) =>
                {
                    shapes.Add(new LayerShape(model, path, layer.InputChannels, layer.OutputChannels, layer.KernelSize, layer.Stride,
                        layer.Padding, layer.Degree, input.shape[2], input.shape[3]));
                    return output;
                });
                removers.Add(hook.remove);
            }
        }

        network.eval();
        using (no_grad())
        using (NewDisposeScope())
        {
            network.call(zeros(1, shape.Channels, shape.Height, shape.Width));
        }

        removers.ForEach(r => r());
        return shapes;
    }

    /// <summary>The distinct shapes of several models (first occurrence kept).</summary>
    public static List<LayerShape> Distinct(IEnumerable<string> models, Func<LayerShape, bool> keep, ImageShape? input = null) =>
        models.SelectMany(m => Of(m, input)).Where(keep).DistinctBy(s => (s.Model, s.Key)).ToList();
}
