namespace XNet.Architectures;

/// <summary>The shape of one input image, channels-first.</summary>
/// <param name="Channels">Number of channels C (1 for grayscale, 3 for RGB).</param>
/// <param name="Height">Height H in pixels.</param>
/// <param name="Width">Width W in pixels.</param>
public sealed record ImageShape(int Channels, int Height, int Width)
{
    /// <summary>C x H x W.</summary>
    public int Size => Channels * Height * Width;

    /// <summary>The largest height and width an image may have (checked before anything of that size is allocated).</summary>
    public const int MaxSide = 8192;

    /// <summary>The most channels an image may have.</summary>
    public const int MaxChannels = 64;

    /// <summary>Throws unless every dimension is positive and at most <see cref="MaxChannels"/> and <see cref="MaxSide"/>.</summary>
    /// <exception cref="ArgumentException">When a dimension is out of range.</exception>
    public ImageShape Validate(string what)
    {
        if (Channels is < 1 or > MaxChannels || Height is < 1 or > MaxSide || Width is < 1 or > MaxSide)
        {
            throw new ArgumentException(
                $"{what}: image shape {this} must have 1-{MaxChannels} channels and a height and width of 1-{MaxSide} pixels.");
        }

        return this;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Channels}x{Height}x{Width}";
}
