namespace Pagoda.Backends;

/// <summary>
/// The paged KV pool: per layer one key and one value tensor of
/// [numBlocks * blockSize, numKvHeads * headDim]. A token's slot is blockId * blockSize + offset.
/// </summary>
public sealed class PagedKvCache(Tensor[] keys, Tensor[] values, int numBlocks, int blockSize) : IDisposable
{
    /// <summary>Key tensors, one per layer: [numSlots, numKvHeads * headDim].</summary>
    public Tensor[] Keys { get; } = keys;

    /// <summary>Value tensors, one per layer: [numSlots, numKvHeads * headDim].</summary>
    public Tensor[] Values { get; } = values;

    /// <summary>Blocks in the pool.</summary>
    public int NumBlocks { get; } = numBlocks;

    /// <summary>Tokens per block.</summary>
    public int BlockSize { get; } = blockSize;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Keys.Concat(Values))
            t.Dispose();
    }
}
