using System.Collections.Concurrent;

namespace XNet.MLNet.Training;

/// <summary>
/// One prepared mini-batch: pixels, labels and the augmentation draws for each image. Crop rows and columns are offsets
/// into the padded image (pad-and-crop) or the top-left corner of the box (resized crop); heights and widths are the box
/// size (resized crop only).
/// </summary>
internal sealed record HostBatch(float[] Pixels, long[] Labels, long[] CropRows, long[] CropColumns, bool[] Flips,
    long[] CropHeights, long[] CropWidths)
{
    public int Count => Labels.Length;
}

/// <summary>What the batch loader draws for each training image.</summary>
internal sealed record AugmentationPlan(AugmentationKind Kind, int Padding, bool Flip, (double Min, double Max) Scale,
    (double Min, double Max) Ratio)
{
    /// <summary>Nothing to draw: evaluation, or <see cref="AugmentationKind.None"/>.</summary>
    public static AugmentationPlan Identity { get; } = new(AugmentationKind.None, 0, false, (1, 1), (1, 1));

    /// <summary>Whether the batch tensor has to be transformed at all.</summary>
    public bool Active => Kind switch
    {
        AugmentationKind.PadCropFlip => Padding > 0 || Flip,
        AugmentationKind.RandomResizedCrop => true,
        _ => false,
    };

    public static AugmentationPlan From(XNetTrainer.Options options) =>
        options.Augmentation == AugmentationKind.None ? Identity
            : new(options.Augmentation, options.RandomCropPadding, options.HorizontalFlip, options.CropScale, options.CropRatio);
}

/// <summary>
/// Prepares the mini-batches of one epoch on a background thread (shuffled with a seeded generator, pixels copied,
/// augmentation drawn) while the model computes on the previous batch.
/// </summary>
internal sealed class BatchLoader : IDisposable
{
    private readonly BlockingCollection<HostBatch> queue = new(boundedCapacity: 2);
    private readonly CancellationTokenSource stop;
    private readonly Task producer;

    /// <param name="images">The images.</param>
    /// <param name="batchSize">Images per batch; the last batch may be smaller.</param>
    /// <param name="shuffleSeed">Seed of the order and the augmentation draws; null keeps the stored order and draws nothing.</param>
    /// <param name="augmentation">What to draw per image (only with a seed).</param>
    /// <param name="cancellation">Stops the producer.</param>
    /// <param name="startBatch">
    /// Batches to skip (a run resumed within an epoch): their order and augmentation are still drawn, so the batches
    /// that follow are exactly those of an uninterrupted epoch.
    /// </param>
    public BatchLoader(ImageSet images, int batchSize, int? shuffleSeed, AugmentationPlan augmentation, CancellationToken cancellation,
        int startBatch = 0)
    {
        BatchCount = (images.Count + batchSize - 1) / batchSize;
        stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var token = stop.Token;
        producer = Task.Run(() => Produce(images, batchSize, shuffleSeed, augmentation, startBatch, token), token);
    }

    public int BatchCount { get; }

    /// <summary>The batches in order; rethrows a failure of the producer.</summary>
    public IEnumerable<HostBatch> Batches()
    {
        foreach (var batch in queue.GetConsumingEnumerable(stop.Token))
        {
            yield return batch;
        }

        producer.GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        stop.Cancel();
        try
        {
            producer.Wait();
        }
        catch (AggregateException ex) when (ex.InnerExceptions.All(e => e is OperationCanceledException))
        {
        }

        stop.Dispose();
        queue.Dispose();
    }

    private void Produce(ImageSet images, int batchSize, int? seed, AugmentationPlan plan, int startBatch, CancellationToken token)
    {
        try
        {
            var order = Enumerable.Range(0, images.Count).ToArray();
            var random = seed is int s ? new Random(s) : null;
            random?.Shuffle(order);
            int size = images.Shape.Size;
            for (int start = 0, batch = 0; start < order.Length; start += batchSize, batch++)
            {
                bool skipped = batch < startBatch;
                int count = Math.Min(batchSize, order.Length - start);
                var pixels = skipped ? Array.Empty<float>() : new float[count * size];
                var labels = new long[count];
                var rows = new long[count];
                var columns = new long[count];
                var flips = new bool[count];
                var heights = new long[count];
                var widths = new long[count];
                for (int i = 0; i < count; i++)
                {
                    int index = order[start + i];
                    if (!skipped)
                    {
                        images.CopyImage(index, pixels.AsSpan(i * size, size));
                        labels[i] = images.Label(index);
                    }

                    if (random is not null && plan.Kind == AugmentationKind.PadCropFlip)
                    {
                        rows[i] = plan.Padding > 0 ? random.Next(2 * plan.Padding + 1) : 0;
                        columns[i] = plan.Padding > 0 ? random.Next(2 * plan.Padding + 1) : 0;
                        flips[i] = plan.Flip && random.Next(2) == 1;
                    }
                    else if (random is not null && plan.Kind == AugmentationKind.RandomResizedCrop)
                    {
                        var (top, left, h, w) = Augmentation.DrawResizedCrop(random, images.Shape.Height, images.Shape.Width,
                            plan.Scale, plan.Ratio);
                        (rows[i], columns[i], heights[i], widths[i]) = (top, left, h, w);
                        flips[i] = plan.Flip && random.Next(2) == 1;
                    }
                }

                if (!skipped)
                {
                    queue.Add(new HostBatch(pixels, labels, rows, columns, flips, heights, widths), token);
                }
            }
        }
        finally
        {
            queue.CompleteAdding();
        }
    }
}
