namespace XNet.Architectures.Models;

/// <summary>The argument checks every model family makes, with messages that name the family and the expected value.</summary>
internal static class ModelChecks
{
    /// <summary>Throws unless there are 2 to <see cref="ModelZoo.MaxClasses"/> classes.</summary>
    public static void Classes(string family, int numClasses)
    {
        if (numClasses is < 2 or > ModelZoo.MaxClasses)
        {
            throw new ArgumentException($"{family}: number of classes {numClasses} must be from 2 to {ModelZoo.MaxClasses:N0}.");
        }
    }

    /// <summary>Throws unless the input is valid and at least <paramref name="minimum"/> pixels high and wide.</summary>
    /// <remarks>Below that size a pooling layer would reach zero pixels, which libtorch reports as a native error.</remarks>
    public static void MinimumSize(string family, ImageShape input, int minimum)
    {
        input.Validate($"{family} input");
        if (input.Height < minimum || input.Width < minimum)
        {
            throw new ArgumentException(
                $"{family}: input {input} is too small; height and width must be at least {minimum} pixels.");
        }
    }
}
