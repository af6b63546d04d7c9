namespace Pagoda.Backends.Cpu;

/// <summary>
/// KV blocks to and from host memory for KV transfers: the pool is host memory already, so each block is one copy.
/// Safe off the engine's thread because the blocks copied are ones no forward touches meanwhile (see <see cref="IKvBlockCopy"/>).
/// </summary>
public sealed unsafe partial class CpuBackend : IKvBlockCopy
{
    /// <inheritdoc />
    public void CopyKvBlocksToHost(PagedKvCache cache, int layer, ReadOnlySpan<int> blockIds, Span<byte> keys, Span<byte> values)
    {
        int bytes = CheckedBlockBytes(cache, blockIds, keys.Length, values.Length);
        for (int i = 0; i < blockIds.Length; i++)
        {
            Block(cache.Keys[layer], blockIds[i], bytes).CopyTo(keys.Slice(i * bytes, bytes));
            Block(cache.Values[layer], blockIds[i], bytes).CopyTo(values.Slice(i * bytes, bytes));
        }
    }

    /// <inheritdoc />
    public void CopyKvBlocksFromHost(PagedKvCache cache, int layer, ReadOnlySpan<int> blockIds, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values)
    {
        int bytes = CheckedBlockBytes(cache, blockIds, keys.Length, values.Length);
        for (int i = 0; i < blockIds.Length; i++)
        {
            keys.Slice(i * bytes, bytes).CopyTo(Block(cache.Keys[layer], blockIds[i], bytes));
            values.Slice(i * bytes, bytes).CopyTo(Block(cache.Values[layer], blockIds[i], bytes));
        }
    }

    private static Span<byte> Block(Tensor t, int blockId, int bytes) => new(((CpuTensor)t).Pointer + (long)blockId * bytes, bytes);

    // A wrong id would read or write outside the pool: checked here, where the pointers are made.
    private static int CheckedBlockBytes(PagedKvCache cache, ReadOnlySpan<int> blockIds, int keyBytes, int valueBytes)
    {
        int bytes = checked((int)cache.BlockBytes);
        foreach (int id in blockIds)
        {
            if ((uint)id >= (uint)cache.NumBlocks)
                throw new ArgumentOutOfRangeException(nameof(blockIds), $"Block {id} is outside the pool of {cache.NumBlocks}.");
        }
        if (keyBytes != (long)blockIds.Length * bytes || valueBytes != keyBytes)
            throw new ArgumentException($"{blockIds.Length} blocks of {bytes} bytes need buffers of {(long)blockIds.Length * bytes} bytes.");
        return bytes;
    }
}
