namespace XNet.MLNet.Data;

/// <summary>The Fashion-MNIST dataset: its class names and the idx file names of its two splits.</summary>
public static class FashionMnist
{
    /// <summary>Class names, label 0 to 9.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>The images and labels files of a split (<c>train</c> or <c>t10k</c>) in <paramref name="directory"/>, gzipped or not.</summary>
    /// <exception cref="FileNotFoundException">When the directory lacks either file; the message names both.</exception>
    public static (string Images, string Labels) Files(string directory, string split)
    {
        string Find(string kind)
        {
            string plain = Path.Combine(directory, $"{split}-{kind}");
            return File.Exists(plain + ".gz") ? plain + ".gz"
                : File.Exists(plain) ? plain
                : throw new FileNotFoundException(
                    $"Directory '{directory}' has no '{split}-{kind}' or '{split}-{kind}.gz' (the Fashion-MNIST/MNIST idx files).", plain);
        }

        return (Find("images-idx3-ubyte"), Find("labels-idx1-ubyte"));
    }
}
