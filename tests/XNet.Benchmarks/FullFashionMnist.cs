using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Data;
using XNet.MLNet.Training;
using XNet.Tests.Shared;
using static TorchSharp.torch;

/// <summary>Full Fashion-MNIST in memory, and a classifier built as the trainer builds it, for the modes that train on it.</summary>
internal static class FullFashionMnist
{
    /// <summary>One split (<c>train</c> or <c>t10k</c>) of the IDX files in <paramref name="data"/> as an image set.</summary>
    public static ImageSet Load(string data, string split)
    {
        var (images, labels) = FashionMnist.Files(data, split);
        var view = IdxDataset.Load(new MLContext(), images, labels, FashionMnist.ClassNames);
        var shape = DataViewImages.ResolveShape(view.Schema, "Features", null);
        return DataViewImages.Read(view, "Features", "Label", shape, FashionMnist.ClassNames.Count, split, default).Images;
    }

    /// <summary>The trainer's own model construction: normalisation from the training images, then the zoo network.</summary>
    public static XNetModelParameters Classifier(string name, ImageSet train, long seed)
    {
        manual_seed(seed);
        var (mean, std) = train.ChannelStatistics();
        return XNetModelParameters.Create(name, seed, train.Shape, FashionMnist.ClassNames, LabelKeyValues.Text, mean, std, CPU);
    }
}
