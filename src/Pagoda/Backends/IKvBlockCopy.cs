namespace Pagoda.Backends;

/// <summary>
/// Optional: copies whole KV blocks of one layer between the pool and host memory, what disaggregated prefill's
/// transfers are made of (a producer reads a finished prefill's blocks, a consumer writes them into its own). A
/// block's rows are contiguous, so the host side holds the blocks one after another, each
/// <see cref="PagedKvCache.BlockBytes"/> long, keys and values apart.
/// </summary>
/// <remarks>
/// Called off the engine's thread, while forwards run, for blocks no forward reads or writes meanwhile (held by a
/// finished request, or allocated to one that waits for them): implementations must be safe under that contract and
/// must have finished with the pool's memory when they return.
/// </remarks>
public interface IKvBlockCopy
{
    /// <summary>Copies the keys and values of <paramref name="blockIds"/> in <paramref name="layer"/> to host memory.</summary>
    void CopyKvBlocksToHost(PagedKvCache cache, int layer, ReadOnlySpan<int> blockIds, Span<byte> keys, Span<byte> values);

    /// <summary>Writes host keys and values into <paramref name="blockIds"/> of <paramref name="layer"/>.</summary>
    void CopyKvBlocksFromHost(PagedKvCache cache, int layer, ReadOnlySpan<int> blockIds, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values);
}
