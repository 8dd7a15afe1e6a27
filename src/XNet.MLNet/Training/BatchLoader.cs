using System.Collections.Concurrent;

namespace XNet.MLNet.Training;

/// <summary>
/// One prepared mini-batch: pixels, labels and the augmentation draws for each image, in buffers sized for a full batch
/// that the loader fills again once the consumer has moved on (the first <see cref="Count"/> entries are this batch's).
/// Crop rows and columns are offsets into the padded image (pad-and-crop) or the top-left corner of the box (resized
/// crop); heights and widths are the box size (resized crop only).
/// </summary>
internal sealed class HostBatch(int capacity, int imageSize)
{
    public float[] Pixels { get; } = new float[(long)capacity * imageSize];

    public long[] Labels { get; } = new long[capacity];

    public long[] CropRows { get; } = new long[capacity];

    public long[] CropColumns { get; } = new long[capacity];

    public bool[] Flips { get; } = new bool[capacity];

    public long[] CropHeights { get; } = new long[capacity];

    public long[] CropWidths { get; } = new long[capacity];

    /// <summary>The random-erasing box of each image: top row, left column, height (0: nothing erased) and width.</summary>
    public long[] EraseTops { get; } = new long[capacity];

    /// <inheritdoc cref="EraseTops"/>
    public long[] EraseLefts { get; } = new long[capacity];

    /// <inheritdoc cref="EraseTops"/>
    public long[] EraseHeights { get; } = new long[capacity];

    /// <inheritdoc cref="EraseTops"/>
    public long[] EraseWidths { get; } = new long[capacity];

    /// <summary>Images in this batch; the last batch of an epoch may hold fewer than the buffers can.</summary>
    public int Count { get; set; }
}

/// <summary>What the batch loader draws for each training image.</summary>
internal sealed record AugmentationPlan(AugmentationKind Kind, int Padding, bool Flip, (double Min, double Max) Scale,
    (double Min, double Max) Ratio, double Erasing = 0)
{
    /// <summary>Nothing to draw: evaluation, or <see cref="AugmentationKind.None"/> without erasing.</summary>
    public static AugmentationPlan Identity { get; } = new(AugmentationKind.None, 0, false, (1, 1), (1, 1));

    /// <summary>Whether the batch tensor has to be cropped or flipped.</summary>
    public bool Crops => Kind switch
    {
        AugmentationKind.PadCropFlip => Padding > 0 || Flip,
        AugmentationKind.RandomResizedCrop => true,
        _ => false,
    };

    public static AugmentationPlan From(XNetTrainer.Options options) =>
        new(options.Augmentation, options.RandomCropPadding, options.HorizontalFlip, options.CropScale, options.CropRatio,
            options.RandomErasing);
}

/// <summary>
/// Prepares the mini-batches of one epoch on a background thread (shuffled with a seeded generator, pixels copied,
/// augmentation drawn) while the model computes on the previous batch.
/// </summary>
/// <remarks>
/// The loader recycles a fixed set of batch buffers and allocates nothing per batch. Besides sparing the garbage
/// collector a large array per batch, this keeps collections from being started on this thread while the training
/// thread is inside libtorch: TorchSharp leaves the native scalars it creates for operator arguments to the finalizer,
/// and a collection during the call could free one that libtorch is still reading.
/// </remarks>
internal sealed class BatchLoader : IDisposable
{
    private const int Prepared = 2;

    private readonly BlockingCollection<HostBatch> queue = new(boundedCapacity: Prepared);

    // One batch held by the consumer, one being filled, and the prepared ones.
    private readonly BlockingCollection<HostBatch> free = new(boundedCapacity: Prepared + 2);
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
        for (int i = 0; i < Prepared + 2; i++)
        {
            free.Add(new HostBatch(Math.Min(batchSize, images.Count), images.Shape.Size));
        }

        stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var token = stop.Token;
        producer = Task.Run(() => Produce(images, batchSize, shuffleSeed, augmentation, startBatch, token), token);
    }

    public int BatchCount { get; }

    /// <summary>
    /// The batches in order; rethrows a failure of the producer. A batch's buffers are refilled once the next batch is
    /// asked for, so tensors made from them must not alias them.
    /// </summary>
    public IEnumerable<HostBatch> Batches()
    {
        foreach (var batch in queue.GetConsumingEnumerable(stop.Token))
        {
            yield return batch;
            free.Add(batch);
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
        free.Dispose();
    }

    private void Produce(ImageSet images, int batchSize, int? seed, AugmentationPlan plan, int startBatch, CancellationToken token)
    {
        try
        {
            var order = Enumerable.Range(0, images.Count).ToArray();
            var random = seed is int s ? new Random(s) : null;
            random?.Shuffle(order);
            int size = images.Shape.Size;
            for (int start = 0, index = 0; start < order.Length; start += batchSize, index++)
            {
                bool skipped = index < startBatch;
                var batch = free.Take(token);
                batch.Count = Math.Min(batchSize, order.Length - start);
                for (int i = 0; i < batch.Count; i++)
                {
                    int image = order[start + i];
                    if (!skipped)
                    {
                        images.CopyImage(image, batch.Pixels.AsSpan(i * size, size));
                        batch.Labels[i] = images.Label(image);
                    }

                    if (random is not null && plan.Kind == AugmentationKind.PadCropFlip)
                    {
                        batch.CropRows[i] = plan.Padding > 0 ? random.Next(2 * plan.Padding + 1) : 0;
                        batch.CropColumns[i] = plan.Padding > 0 ? random.Next(2 * plan.Padding + 1) : 0;
                        batch.Flips[i] = plan.Flip && random.Next(2) == 1;
                    }
                    else if (random is not null && plan.Kind == AugmentationKind.RandomResizedCrop)
                    {
                        var (top, left, h, w) = Augmentation.DrawResizedCrop(random, images.Shape.Height, images.Shape.Width,
                            plan.Scale, plan.Ratio);
                        (batch.CropRows[i], batch.CropColumns[i], batch.CropHeights[i], batch.CropWidths[i]) = (top, left, h, w);
                        batch.Flips[i] = plan.Flip && random.Next(2) == 1;
                    }

                    if (random is not null && plan.Erasing > 0)
                    {
                        (batch.EraseTops[i], batch.EraseLefts[i], batch.EraseHeights[i], batch.EraseWidths[i]) =
                            Augmentation.DrawErasing(random, plan.Erasing, images.Shape.Height, images.Shape.Width);
                    }
                }

                // A skipped batch (before a resumed position) only advances the generator.
                (skipped ? free : queue).Add(batch, token);
            }
        }
        finally
        {
            queue.CompleteAdding();
        }
    }
}
