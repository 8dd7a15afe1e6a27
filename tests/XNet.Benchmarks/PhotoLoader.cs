using System.Diagnostics;
using Microsoft.ML;
using XNet.Architectures;
using XNet.MLNet.Data;
using XNet.MLNet.Training;

/// <summary>
/// The image-folder loader on its own: the time to build (or reuse) a folder's cache, then the trainer's batch loader
/// over it for one epoch (seeded order, RandomResizedCrop and flip draws, bytes widened to floats), in images/s, to set
/// against the model's training images/s: the loader must stay well ahead of the model.
/// </summary>
internal static class PhotoLoader
{
    public static void Run(string folder, int side, int batchSize)
    {
        var ml = new MLContext(seed: 0);
        var clock = Stopwatch.StartNew();
        bool reused = false;
        var loaded = ImageFolderDataset.Load(ml, folder, side, side, progress: new Reporter(p => reused = p.Reused));
        Console.WriteLine($"cache of {loaded.Files.Count:N0} images at 3x{side}x{side}: {(reused ? "reused" : "built")} in {clock.Elapsed.TotalSeconds:F1} s" +
                          (reused ? "" : $" ({loaded.Files.Count / clock.Elapsed.TotalSeconds:F0} images/s)"));

        var view = (ByteImageDataView)loaded.Data;
        using var images = new ImageSet(view.Shape, view.Images, view.ClassNames.Count, indices: null, ownsStorage: false);
        var plan = new AugmentationPlan(AugmentationKind.RandomResizedCrop, 0, true, (0.08, 1.0), (3.0 / 4, 4.0 / 3));
        clock.Restart();
        long count = 0;
        using (var loader = new BatchLoader(images, batchSize, shuffleSeed: 0, plan, CancellationToken.None))
        {
            foreach (var batch in loader.Batches())
            {
                count += batch.Count;
            }
        }

        Console.WriteLine($"batch loader: {count:N0} images in {clock.Elapsed.TotalSeconds:F1} s, {count / clock.Elapsed.TotalSeconds:F0} images/s (batches of {batchSize})");
    }

    private sealed class Reporter(Action<ImageFolderProgress> report) : IProgress<ImageFolderProgress>
    {
        public void Report(ImageFolderProgress value) => report(value);
    }
}
