namespace XNet.Architectures;

/// <summary>The shape of one input image, channels-first.</summary>
/// <param name="Channels">Number of channels C (1 for grayscale, 3 for RGB).</param>
/// <param name="Height">Height H in pixels.</param>
/// <param name="Width">Width W in pixels.</param>
public sealed record ImageShape(int Channels, int Height, int Width)
{
    /// <summary>C x H x W.</summary>
    public int Size => Channels * Height * Width;

    /// <summary>Throws unless every dimension is positive.</summary>
    /// <exception cref="ArgumentException">When a dimension is not positive.</exception>
    public ImageShape Validate(string what)
    {
        if (Channels < 1 || Height < 1 || Width < 1)
        {
            throw new ArgumentException($"{what}: image shape {this} must have positive channels, height and width.");
        }

        return this;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Channels}x{Height}x{Width}";
}
