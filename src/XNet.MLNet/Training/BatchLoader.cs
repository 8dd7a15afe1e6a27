using System.Collections.Concurrent;

namespace XNet.MLNet.Training;

/// <summary>One prepared mini-batch: pixels, labels and the augmentation draws for each image.</summary>
internal sealed record HostBatch(float[] Pixels, long[] Labels, long[] CropRows, long[] CropColumns, bool[] Flips)
{
    public int Count => Labels.Length;
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
    /// <param name="cropPadding">Padding of the random crop (0: none).</param>
    /// <param name="flip">Whether to draw horizontal flips.</param>
    /// <param name="cancellation">Stops the producer.</param>
    public BatchLoader(ImageSet images, int batchSize, int? shuffleSeed, int cropPadding, bool flip, CancellationToken cancellation)
    {
        BatchCount = (images.Count + batchSize - 1) / batchSize;
        stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var token = stop.Token;
        producer = Task.Run(() => Produce(images, batchSize, shuffleSeed, cropPadding, flip, token), token);
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

    private void Produce(ImageSet images, int batchSize, int? seed, int cropPadding, bool flip, CancellationToken token)
    {
        try
        {
            var order = Enumerable.Range(0, images.Count).ToArray();
            var random = seed is int s ? new Random(s) : null;
            random?.Shuffle(order);
            int size = images.Shape.Size;
            for (int start = 0; start < order.Length; start += batchSize)
            {
                int count = Math.Min(batchSize, order.Length - start);
                var pixels = new float[count * size];
                var labels = new long[count];
                var rows = new long[count];
                var columns = new long[count];
                var flips = new bool[count];
                for (int i = 0; i < count; i++)
                {
                    int index = order[start + i];
                    images.Image(index).CopyTo(pixels.AsSpan(i * size, size));
                    labels[i] = images.Label(index);
                    if (random is not null)
                    {
                        rows[i] = cropPadding > 0 ? random.Next(2 * cropPadding + 1) : 0;
                        columns[i] = cropPadding > 0 ? random.Next(2 * cropPadding + 1) : 0;
                        flips[i] = flip && random.Next(2) == 1;
                    }
                }

                queue.Add(new HostBatch(pixels, labels, rows, columns, flips), token);
            }
        }
        finally
        {
            queue.CompleteAdding();
        }
    }
}
