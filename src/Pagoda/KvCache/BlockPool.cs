using Pagoda.Requests;

namespace Pagoda.KvCache;

/// <summary>
/// Every block of the pool, the free queue and the prefix cache (hash → block). A cached block keeps
/// its hash while free and is evicted lazily, only when it is handed out again. With KV cache events on, every
/// change to the prefix cache is also recorded as a <see cref="KvCacheEvent"/> (vLLM's kv_event_queue).
/// </summary>
public sealed class BlockPool
{
    private readonly KvCacheBlock[] _blocks;
    private readonly FreeBlockQueue _free;
    private readonly Dictionary<ulong, KvCacheBlock> _cached = new();
    private List<KvCacheEvent>? _events;

    /// <summary>A pool of <paramref name="numBlocks"/> blocks, all free, queued by id.</summary>
    /// <param name="enableKvCacheEvents">Record prefix-cache changes for <see cref="TakeEvents"/> (only with caching).</param>
    /// <param name="reserveNullBlock">
    /// Keep block 0 out of circulation as the <see cref="NullBlock"/> (sliding-window models, as vLLM's pool does):
    /// the other blocks are free, queued by id.
    /// </param>
    public BlockPool(int numBlocks, bool enableCaching, bool enableKvCacheEvents = false, bool reserveNullBlock = false)
    {
        if (numBlocks < (reserveNullBlock ? 2 : 1))
            throw new ArgumentOutOfRangeException(nameof(numBlocks), $"The KV pool needs at least {(reserveNullBlock ? "two blocks (one is the null block)" : "one block")}.");
        _blocks = Enumerable.Range(0, numBlocks).Select(i => new KvCacheBlock(i) { IsNull = reserveNullBlock && i == 0 }).ToArray();
        NullBlock = reserveNullBlock ? _blocks[0] : null;
        _free = new FreeBlockQueue(reserveNullBlock ? _blocks.Skip(1) : _blocks);
        EnableCaching = enableCaching;
        _events = enableCaching && enableKvCacheEvents ? [] : null;
    }

    /// <summary>Whether full blocks are registered for reuse.</summary>
    public bool EnableCaching { get; }

    /// <summary>Whether prefix-cache changes are recorded as events.</summary>
    public bool EnableKvCacheEvents => _events != null;

    /// <summary>The events recorded since the last call, oldest first (empty when events are off).</summary>
    public IReadOnlyList<KvCacheEvent> TakeEvents()
    {
        if (_events is not { Count: > 0 } taken)
            return [];
        _events = [];
        return taken;
    }

    /// <summary>Blocks in the pool, the null block included.</summary>
    public int NumBlocks => _blocks.Length;

    /// <summary>The placeholder for positions a sliding window has passed (block 0), or null when none is reserved.</summary>
    public KvCacheBlock? NullBlock { get; }

    /// <summary>Blocks that can hold KV: all but the null block.</summary>
    public int NumUsableBlocks => NullBlock is null ? _blocks.Length : _blocks.Length - 1;

    /// <summary>Blocks no request holds (cached or not); never the null block.</summary>
    public int NumFreeBlocks => _free.Count;

    /// <summary>Fraction of the usable blocks held by requests (0 again once every request is freed).</summary>
    public double Usage => 1.0 - (double)_free.Count / NumUsableBlocks;

    /// <summary>A block by id.</summary>
    public KvCacheBlock this[int blockId] => _blocks[blockId];

    /// <summary>Free blocks in eviction order (head first).</summary>
    public IEnumerable<KvCacheBlock> FreeQueue => _free.Enumerate();

    /// <summary>The cached block for <paramref name="hash"/>, if one holds exactly these tokens.</summary>
    public KvCacheBlock? GetCachedBlock(BlockHash hash) =>
        _cached.TryGetValue(hash.Value, out var b) && b.Hash!.Matches(hash) ? b : null;

    /// <summary>Takes <paramref name="count"/> blocks from the head of the free queue, evicting their cache entries.</summary>
    public List<KvCacheBlock> GetNewBlocks(int count)
    {
        if (count > _free.Count)
            throw new InvalidOperationException($"Asked for {count} blocks with {_free.Count} free.");
        var result = new List<KvCacheBlock>(count);
        for (int i = 0; i < count; i++)
        {
            var b = _free.PopLeft();
            if (b.Hash is { } h)
            {
                _cached.Remove(h.Value);
                b.Hash = null;
                _events?.Add(new BlockRemoved([h.Value]));
            }
            b.RefCount = 1;
            result.Add(b);
        }
        return result;
    }

    /// <summary>
    /// A prefix-cache hit: the blocks gain a holder and leave the free queue if they were in it. The null block
    /// is skipped: it is never in the queue, and any number of tables may hold it.
    /// </summary>
    public void Touch(IEnumerable<KvCacheBlock> blocks)
    {
        foreach (var b in blocks)
        {
            if (b.IsNull)
                continue;
            if (b.RefCount == 0)
                _free.Remove(b);
            b.RefCount++;
        }
    }

    /// <summary>
    /// Drops one holder of each block, in the given order; a block nobody holds joins the tail of the
    /// free queue (callers pass a request's blocks last-first, so its prefix is evicted last). The null block is
    /// skipped: it has no holders to drop and must never be handed out.
    /// </summary>
    public void FreeBlocks(IEnumerable<KvCacheBlock> orderedBlocks)
    {
        foreach (var b in orderedBlocks)
        {
            if (b.IsNull)
                continue;
            if (b.RefCount <= 0)
                throw new InvalidOperationException($"{b} freed more often than held.");
            if (--b.RefCount == 0)
                _free.Append(b);
        }
    }

    /// <summary>Registers a full block under its hash (a hash already cached keeps its first block).</summary>
    public void CacheBlock(KvCacheBlock block, BlockHash hash)
    {
        // The null block holds no tokens of its own: caching it would let a lookup hit garbage.
        if (!EnableCaching || block.Hash is not null || block.IsNull)
            return;
        if (_cached.TryAdd(hash.Value, block))
            block.Hash = hash;
    }

    /// <summary>
    /// Registers a request's blocks [<paramref name="from"/>, <paramref name="to"/>) that just became full (vLLM's
    /// cache_full_blocks) and records them as one <see cref="BlockStored"/>: their hashes, the hash of the block
    /// before them, their tokens. A block whose hash another block already holds stays out of the cache but is
    /// still in the event (as in vLLM, whose cache keeps such duplicates): the run's tokens stay contiguous, and
    /// announcing a hash the cache already has changes nothing for a subscriber.
    /// </summary>
    public void CacheFullBlocks(IReadOnlyList<KvCacheBlock> blocks, IReadOnlyList<BlockHash> hashes, int from, int to, int blockSize)
    {
        if (!EnableCaching || to <= from)
            return;
        for (int i = from; i < to; i++)
            CacheBlock(blocks[i], hashes[i]);
        if (_events == null)
            return;
        var blockHashes = new ulong[to - from];
        var tokenIds = new int[(to - from) * blockSize];
        for (int i = from; i < to; i++)
        {
            blockHashes[i - from] = hashes[i].Value;
            hashes[i].TokenIds.CopyTo(tokenIds, (i - from) * blockSize);
        }
        _events.Add(new BlockStored(blockHashes, from == 0 ? null : hashes[from - 1].Value, tokenIds, blockSize));
    }

    /// <summary>
    /// Takes a block out of the prefix cache (vLLM's _maybe_evict_cached_block) whoever holds it: its KV
    /// was never written, so no later lookup may find it. Its holders keep the block itself.
    /// </summary>
    public void EvictCachedBlock(KvCacheBlock block)
    {
        if (block.Hash is not { } h)
            return;
        if (_cached.TryGetValue(h.Value, out var cached) && cached == block)
        {
            _cached.Remove(h.Value);
            _events?.Add(new BlockRemoved([h.Value]));
        }
        block.Hash = null;
    }

    /// <summary>Forgets every cached block (all must be free).</summary>
    public bool ResetPrefixCache()
    {
        if (_free.Count != NumUsableBlocks)
            return false;
        foreach (var b in _cached.Values)
            b.Hash = null;
        _cached.Clear();
        _events?.Add(new AllBlocksCleared());
        return true;
    }
}
