namespace XNet.Architectures.Layers.Kernels;

/// <summary>
/// The output gradient of a weight-gradient task's batch items, made by the caller chunk by chunk instead of read from
/// a tensor in memory, and handed back once the task has taken its sums: a convolution unit's backward pass computes
/// its batch norm's input gradient for a chunk of items, the convolution's weight gradient sums it, and its input
/// gradient reads it, all while the chunk is in the core's cache (<see cref="SparseConvPlan.UnitGradients"/>).
/// </summary>
internal unsafe interface IChunkUpstream
{
    /// <summary>The output gradient of items [<paramref name="first"/>, first + <paramref name="count"/>), as (count, C_out, H, W) contiguous floats.</summary>
    float* Take(int first, int count);

    /// <summary>Called with <see cref="Take"/>'s chunk once the task's sums are taken: the chunk's last use.</summary>
    void Done(int first, int count, float* upstream);
}

/// <summary>Writes the output gradient of batch items [<paramref name="first"/>, first + <paramref name="count"/>) to <paramref name="into"/>, as (count, C_out, H, W) contiguous floats.</summary>
internal unsafe delegate void FillUpstream(float* into, int first, int count);
