using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet.Training;

namespace XNet.MLNet.Data;

/// <summary>The on-disk format <see cref="ImageDatasets.Load"/> recognised.</summary>
public enum ImageDatasetFormat
{
    /// <summary>CIFAR-10 binary (<c>cifar-10-batches-bin</c>).</summary>
    Cifar10,

    /// <summary>CIFAR-100 binary (<c>cifar-100-binary</c>), fine labels.</summary>
    Cifar100,

    /// <summary>idx files (MNIST, Fashion-MNIST): <c>train-images-idx3-ubyte</c> and friends, gzip optional.</summary>
    Idx,

    /// <summary>An ImageNet-style folder of class subfolders.</summary>
    ImageFolder,
}

/// <summary>Settings for image folders (ignored by the fixed-size formats).</summary>
public sealed record ImageFolderOptions
{
    /// <summary>Target height in pixels.</summary>
    public int Height { get; init; } = 224;

    /// <summary>Target width in pixels.</summary>
    public int Width { get; init; } = 224;

    /// <summary>1 (grayscale) or 3 (RGB).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>
    /// How images reach the target size; the default stretches the whole image, as the trainer's image columns and
    /// <c>xnet predict</c> do, so that training augmentation (RandomResizedCrop) draws from the whole image.
    /// </summary>
    public ImageFolderResize Resize { get; init; } = ImageFolderResize.Stretch;

    /// <summary>Shorter side before the centre crop; null: max(Height, Width) * 8 / 7.</summary>
    public int? ShorterSide { get; init; }

    /// <summary>Leave out undecodable files (listed in <see cref="ImageDataset.SkippedFiles"/>) instead of throwing.</summary>
    public bool SkipUnreadable { get; init; }

    /// <summary>Where decoded images are cached; null: <c>xnet-image-cache</c> in the temporary folder.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Told how far the decoding of the folder into its cache has come.</summary>
    public IProgress<ImageFolderProgress>? Progress { get; init; }
}

/// <summary>A dataset split loaded by <see cref="ImageDatasets.Load"/>.</summary>
/// <param name="Data">Key-typed <c>Label</c> (KeyValues: class names) and <c>Features</c>, <c>Vector&lt;Single, C, H, W&gt;</c>, raw 0-255.</param>
/// <param name="Format">The format found.</param>
/// <param name="Shape">The image shape of every row.</param>
/// <param name="ClassNames">Class names, label 0 first.</param>
/// <param name="Mean">The paper's reference code's per-channel normalisation mean in 0-255 units, or null when it had none for this dataset.</param>
/// <param name="Std">The paper's reference code's per-channel normalisation standard deviation in 0-255 units, or null.</param>
/// <param name="Augmentation">The training augmentation the paper's reference code used for this dataset (CIFAR: pad-and-crop
/// and flip; image folders: RandomResizedCrop and flip); idx digits and clothes get this project's pad-2 crop and flip.</param>
/// <param name="RandomCropPadding">The zero padding of that pad-and-crop (CIFAR: 4, idx: 2; 0 for RandomResizedCrop).</param>
/// <param name="SkippedFiles">Image files left out as unreadable (image folders with <see cref="ImageFolderOptions.SkipUnreadable"/>).</param>
/// <param name="Folder">The folder the split was read from (an image folder's <c>train</c>, <c>val</c> or <c>test</c>, say).</param>
public sealed record ImageDataset(IDataView Data, ImageDatasetFormat Format, ImageShape Shape, IReadOnlyList<string> ClassNames,
    IReadOnlyList<float>? Mean, IReadOnlyList<float>? Std, AugmentationKind Augmentation, int RandomCropPadding,
    IReadOnlyList<string> SkippedFiles, string Folder);

/// <summary>
/// One entry point for the image datasets X-Net reads: finds the format of a path (CIFAR-10, CIFAR-100, idx, image folder)
/// and loads a split with the reference project's normalisation statistics and augmentation.
/// </summary>
public static class ImageDatasets
{
    /// <summary>The held-out split's folder names, in the order looked for: ImageNet's, Roboflow's, Keras's, then a test split.</summary>
    private static readonly string[] HeldOutFolders = { "val", "valid", "validation", "test" };

    // The paper's reference code's normalisation per dataset, per channel (R, G, B), in 0-255 units; image folders get
    // ImageNet's mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225), times 255.
    private static readonly Dictionary<ImageDatasetFormat, (float[] Mean, float[] Std)> ReferenceStatistics = new()
    {
        [ImageDatasetFormat.Cifar10] = ([125.3f, 123.0f, 113.9f], [63.0f, 62.1f, 66.7f]),
        [ImageDatasetFormat.Cifar100] = ([129.3f, 124.1f, 112.4f], [68.2f, 65.4f, 70.4f]),
        [ImageDatasetFormat.ImageFolder] = ([0.485f * 255, 0.456f * 255, 0.406f * 255], [0.229f * 255, 0.224f * 255, 0.225f * 255]),
    };

    /// <summary>Recognises the dataset format of a folder.</summary>
    /// <param name="path">The folder.</param>
    /// <param name="directory">The folder holding the files (a CIFAR archive folder may sit below <paramref name="path"/>).</param>
    /// <returns>The format, or null when none is recognised.</returns>
    public static ImageDatasetFormat? Detect(string path, out string directory)
    {
        directory = path;
        if (!Directory.Exists(path))
        {
            return null;
        }

        if (CifarDataset.Locate(path) is var (cifar, folder))
        {
            directory = folder;
            return cifar;
        }

        if (new[] { "train", "t10k" }.Any(s => File.Exists(Path.Combine(path, $"{s}-images-idx3-ubyte"))
                                            || File.Exists(Path.Combine(path, $"{s}-images-idx3-ubyte.gz"))))
        {
            return ImageDatasetFormat.Idx;
        }

        return Directory.EnumerateDirectories(path).Any() ? ImageDatasetFormat.ImageFolder : null;
    }

    /// <summary>Loads a split of the dataset at <paramref name="path"/>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="path">A CIFAR-10/100 binary folder (or its parent), a folder of idx files, or an image folder: either
    /// <c>path/train</c> and <c>path/val</c> (or <c>valid</c>, <c>validation</c>, <c>test</c>) holding class subfolders, or class subfolders directly
    /// (then both splits are the whole folder: split it yourself, e.g. with <c>mlContext.Data.TrainTestSplit</c>).</param>
    /// <param name="split"><c>train</c> or <c>test</c> (idx also takes <c>t10k</c>; image folders also <c>val</c>).</param>
    /// <param name="imageFolder">Image-folder settings; null: 224x224 RGB, the whole image stretched.</param>
    /// <exception cref="DirectoryNotFoundException">When the path does not exist or is no known dataset layout.</exception>
    /// <exception cref="ArgumentException">When the split is not known.</exception>
    /// <exception cref="FileNotFoundException">When a file of the split is missing (see the format's loader).</exception>
    /// <exception cref="InvalidDataException">When a file is corrupt (see the format's loader), or an image folder has a
    /// <c>train</c> folder of class folders with no held-out split beside it.</exception>
    public static ImageDataset Load(MLContext mlContext, string path, string split, ImageFolderOptions? imageFolder = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (!Directory.Exists(path))
        {
            throw IO.MissingPath.Folder("Dataset folder", path);
        }

        string normalized = split.ToLowerInvariant() switch
        {
            "train" => "train",
            "test" or "t10k" or "val" => "test",
            _ => throw new ArgumentException($"Dataset split '{split}' is not known; expected 'train' or 'test'.", nameof(split)),
        };
        var format = Detect(path, out string directory)
            ?? throw new DirectoryNotFoundException(
                $"Folder '{path}' is not a dataset X-Net recognises: expected CIFAR-10 binary files (data_batch_1.bin, test_batch.bin), " +
                "CIFAR-100 binary files (train.bin, test.bin), idx files (train-images-idx3-ubyte[.gz]), or class subfolders of images.");

        switch (format)
        {
            case ImageDatasetFormat.Cifar10:
            case ImageDatasetFormat.Cifar100:
            {
                var view = CifarDataset.Read(directory, format, normalized);
                var (mean, std) = ReferenceStatistics[format];
                return new ImageDataset(view, format, view.Shape, view.ClassNames, mean, std, AugmentationKind.PadCropFlip, 4, [], directory);
            }

            case ImageDatasetFormat.Idx:
            {
                var (images, labels) = FashionMnist.Files(directory, normalized == "train" ? "train" : "t10k");
                bool fashion = directory.Contains("fashion", StringComparison.OrdinalIgnoreCase);
                var data = IdxDataset.Load(mlContext, images, labels, fashion ? FashionMnist.ClassNames : null);
                var shape = DataViewImages.ResolveShape(data.Schema, "Features", null);
                var names = LabelKeyValues.Read(data.Schema["Label"]).Names;
                return new ImageDataset(data, format, shape, names, null, null, AugmentationKind.PadCropFlip, 2, [], directory);
            }

            default:
            {
                string root = ImageFolderRoot(directory, normalized);
                var options = imageFolder ?? new ImageFolderOptions();
                var loaded = ImageFolderDataset.Load(mlContext, root, options.Height, options.Width, options.Channels, options.Resize,
                    options.ShorterSide, options.SkipUnreadable, options.CacheDirectory, options.Progress);
                var (mean, std) = options.Channels == 3 ? ReferenceStatistics[format] : (null, null);
                return new ImageDataset(loaded.Data, format, loaded.Shape, loaded.ClassNames, mean, std, AugmentationKind.RandomResizedCrop, 0,
                    loaded.SkippedFiles, root);
            }
        }
    }

    /// <summary>
    /// The median height and width of up to <paramref name="sample"/> images spread evenly over an image folder's training
    /// split (<c>path/train</c>, or <paramref name="path"/> itself), read from their headers without decoding: what an
    /// input size for the folder can follow. Files that are not images are passed over.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">When <paramref name="path"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">When the folder is not a folder of class subfolders, or no sampled file is an image.</exception>
    public static (int Height, int Width) MedianImageSize(string path, int sample = 64)
    {
        string root = ImageFolderRoot(path, "train");
        var files = ImageFolderDataset.Scan(root).Files;
        int sampled = Math.Min(sample, files.Count);
        var sizes = Enumerable.Range(0, sampled)
            .Select(i => files[(int)((long)i * files.Count / sampled)])
            .Select(file =>
            {
                using var codec = new FileInfo(file).Length > 0 ? SkiaSharp.SKCodec.Create(file) : null;
                return codec?.Info;
            })
            .OfType<SkiaSharp.SKImageInfo>()
            .ToArray();
        if (sizes.Length == 0)
        {
            throw new InvalidDataException($"Image folder '{root}': none of the {sampled} files sampled is an image.");
        }

        int Median(IEnumerable<int> values) => values.Order().ElementAt(sizes.Length / 2);
        return (Median(sizes.Select(s => s.Height)), Median(sizes.Select(s => s.Width)));
    }

    /// <summary>
    /// The folder a split reads: <c>path/train</c> for training and the first of <see cref="HeldOutFolders"/> for testing when
    /// both exist (in any letter case), otherwise <paramref name="path"/> itself (class folders directly, both splits).
    /// </summary>
    /// <exception cref="InvalidDataException">When <c>path/train</c> holds class folders but nothing held out lies beside it: read
    /// as class folders, <c>train</c> would silently become one class holding every image.</exception>
    private static string ImageFolderRoot(string path, string split)
    {
        // Matched whatever the case (Train/, Val/), so that split folders are never read as two classes.
        var folders = Directory.GetDirectories(path);
        string? Find(string name) => folders.FirstOrDefault(d => string.Equals(Path.GetFileName(d), name, StringComparison.OrdinalIgnoreCase));
        if (Find("train") is not string train)
        {
            return path;
        }

        string? heldOut = HeldOutFolders.Select(Find).FirstOrDefault(d => d is not null);
        if (heldOut is not null)
        {
            return split == "train" ? train : heldOut;
        }

        // A class named train (CIFAR-100 has one) holds its images; a split folder holds class folders and no images.
        bool splitFolder = !Directory.EnumerateFiles(train).Any(ImageFolderDataset.IsImageFile) &&
                           ImageFolderDataset.ClassFolders(train).Length > 0;
        return splitFolder
            ? throw new InvalidDataException(
                $"Image folder '{path}' has a split folder '{Path.GetFileName(train)}' (class folders inside it) but no held-out split beside it " +
                $"({string.Join(", ", HeldOutFolders.Select(n => n + "/"))}). Add one with the same class folders, or pass '{train}' " +
                "itself as the data folder to train on it alone.")
            : path;
    }
}
