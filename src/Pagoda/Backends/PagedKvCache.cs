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

    /// <summary>Layers (each with a key and a value tensor).</summary>
    public int NumLayers => Keys.Length;

    /// <summary>The element type the pool stores (float32 on the CPU, the compute dtype on a GPU).</summary>
    public DType DType => Keys.Length > 0 ? Keys[0].DType : DType.F32;

    /// <summary>Keys (or values) of one token in one layer: numKvHeads × headDim.</summary>
    public int KvWidth => Keys.Length > 0 ? Keys[0].Cols : 0;

    /// <summary>Bytes of one block's keys (or values) in one layer; a block's rows are contiguous.</summary>
    public long BlockBytes => (long)BlockSize * KvWidth * DTypes.SizeOf(DType);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Keys.Concat(Values))
            t.Dispose();
    }
}
