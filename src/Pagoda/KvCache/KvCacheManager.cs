using Pagoda.Requests;

namespace Pagoda.KvCache;

/// <summary>Prefix-cache lookups and hits, in tokens (vLLM's PrefixCacheStats).</summary>
public sealed record PrefixCacheStats(long QueriedTokens, long HitTokens)
{
    /// <summary>Hit tokens / queried tokens (0 before any query).</summary>
    public double HitRate => QueriedTokens == 0 ? 0 : (double)HitTokens / QueriedTokens;
}

/// <summary>
/// Gives requests the blocks their tokens need: prefix-cache lookup at admission, growth as they are
/// scheduled, caching of blocks as they fill, and release (last block first) when they finish or are preempted.
/// With a sliding window (every layer of the model slides), blocks the window has passed are also released
/// while the request runs (see <see cref="SlidingWindowManager"/>); block 0 is then the null block.
/// </summary>
public sealed class KvCacheManager
{
    private readonly Dictionary<string, List<KvCacheBlock>> _blocks = new();
    private readonly Dictionary<string, int> _numCachedBlocks = new();
    private readonly SlidingWindowManager? _window;
    private long _queried, _hits;

    /// <summary>A manager over a new pool of <paramref name="numBlocks"/> blocks of <paramref name="blockSize"/> tokens.</summary>
    /// <param name="slidingWindow">
    /// Keys a query sees when every attention layer slides (vLLM's SlidingWindowSpec), 0 when any layer attends to
    /// all of them: a mixed model keeps every block, as its full-attention layers need. A window reserves block 0 as
    /// the null block.
    /// </param>
    public KvCacheManager(int numBlocks, int blockSize, bool enablePrefixCaching, bool enableKvCacheEvents = false, int slidingWindow = 0)
    {
        if (slidingWindow < 0)
            throw new ArgumentOutOfRangeException(nameof(slidingWindow), "The sliding window is 0 (none) or positive.");
        BlockSize = blockSize;
        SlidingWindow = slidingWindow;
        Pool = new BlockPool(numBlocks, enablePrefixCaching, enableKvCacheEvents, reserveNullBlock: slidingWindow > 0);
        _window = slidingWindow > 0 ? new SlidingWindowManager(Pool, blockSize, slidingWindow) : null;
    }

    /// <summary>The pool.</summary>
    public BlockPool Pool { get; }

    /// <summary>Keys a query sees (0: all); blocks before the window are released as requests advance.</summary>
    public int SlidingWindow { get; }

    /// <summary>The prefix-cache changes since the last call, oldest first (vLLM's take_events).</summary>
    public IReadOnlyList<KvCacheEvent> TakeEvents() => Pool.TakeEvents();

    /// <summary>Tokens per block.</summary>
    public int BlockSize { get; }

    /// <summary>Fraction of the usable blocks held by requests.</summary>
    public double Usage => Pool.Usage;

    /// <summary>Counters since start.</summary>
    public PrefixCacheStats PrefixCacheStats => new(_queried, _hits);

    /// <summary>
    /// The block ids a request holds, in order (a new array on every call: callers may keep it). With a sliding
    /// window, positions the window has passed show the null block's id (0).
    /// </summary>
    public int[] GetBlockIds(string requestId)
    {
        if (!_blocks.TryGetValue(requestId, out var held))
            return [];
        var ids = new int[held.Count];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = held[i].BlockId;
        return ids;
    }

    /// <summary>
    /// The longest cached prefix of a new request, in whole blocks, leaving at least its last token to
    /// compute (its logits are needed). Counts towards the hit rate. With a sliding window only the blocks the
    /// window of the first computed token covers must be cached; the null block stands for those before.
    /// </summary>
    public (List<KvCacheBlock> Blocks, int NumComputedTokens) GetComputedBlocks(Request request)
    {
        if (!Pool.EnableCaching || request.SkipPrefixCache)
            return ([], 0);
        UpdateBlockHashes(request);
        int maxHitBlocks = (request.NumTokens - 1) / BlockSize;
        var hits = _window?.FindLongestCacheHit(request.BlockHashes, maxHitBlocks) ?? FindLongestCachedPrefix(request.BlockHashes, maxHitBlocks);
        _queried += request.NumTokens;
        _hits += hits.Count * BlockSize;
        return (hits, hits.Count * BlockSize);
    }

    /// <summary>
    /// Makes room for <paramref name="numNewTokens"/> more tokens after the request's computed ones (plus
    /// prefix-cache hits being adopted). Returns false when the pool is too small, changing nothing but (with a
    /// sliding window) the release of blocks the window has passed, which no later step reads.
    /// </summary>
    /// <param name="delayCacheBlocks">
    /// Leave the new full blocks out of the prefix cache (vLLM's delay_cache_blocks): a KV transfer fills them later,
    /// and no other request may hit them before it has; <see cref="CacheBlocks"/> registers them then.
    /// </param>
    public bool AllocateSlots(Request request, int numNewTokens, IReadOnlyList<KvCacheBlock>? newComputedBlocks = null,
        bool delayCacheBlocks = false)
    {
        newComputedBlocks ??= [];
        var held = _blocks.TryGetValue(request.RequestId, out var list) ? list : [];
        int numComputed = request.NumComputedTokens + newComputedBlocks.Count * BlockSize;
        // Released before counting (as vLLM does), so this very allocation may reuse them.
        _window?.RemoveSkippedBlocks(held, numComputed);
        int required = (numComputed + numNewTokens + BlockSize - 1) / BlockSize;
        int numNew = Math.Max(0, required - held.Count - newComputedBlocks.Count);
        // Hits the window has passed already are not adopted: the null block takes their place.
        int skippedHits = _window?.NumSkippedHitBlocks(numComputed, held.Count, newComputedBlocks.Count) ?? 0;
        // Hit blocks sitting in the free queue stop being available once adopted (never the null block: it is not queued).
        int evictableHits = 0;
        for (int i = skippedHits; i < newComputedBlocks.Count; i++)
            evictableHits += newComputedBlocks[i] is { RefCount: 0, IsNull: false } ? 1 : 0;
        if (numNew > Pool.NumFreeBlocks - evictableHits)
            return false;

        if (list == null)
            _blocks[request.RequestId] = held;
        if (newComputedBlocks.Count > 0)
        {
            var adopted = newComputedBlocks.Select((b, i) => i < skippedHits ? _window!.NullBlock : b).ToList();
            Pool.Touch(adopted);
            held.AddRange(adopted);
            // Hits are in the cache already (and were announced when they entered it), as vLLM's num_cached_block says.
            _numCachedBlocks[request.RequestId] = Math.Max(_numCachedBlocks.GetValueOrDefault(request.RequestId), held.Count);
        }
        // A decode step needs a new block once every block-size tokens; the other steps allocate nothing.
        if (numNew > 0)
            held.AddRange(Pool.GetNewBlocks(numNew));
        if (!delayCacheBlocks)
            CacheFullBlocks(request, Math.Min(numComputed + numNewTokens, request.NumTokens));
        return true;
    }

    /// <summary>
    /// Registers the request's blocks that are full once <paramref name="numComputedTokens"/> tokens are in the cache
    /// (vLLM's cache_blocks): after a KV transfer landed in blocks allocated with delayed caching.
    /// </summary>
    public void CacheBlocks(Request request, int numComputedTokens) => CacheFullBlocks(request, numComputedTokens);

    /// <summary>
    /// Takes a finished request's blocks out of its bookkeeping with their references, so that they outlive it (a
    /// producer holds a prefill's blocks until a consumer has pulled them, vLLM's delayed free); the request's id may
    /// then be used again. Blocks registered past its computed tokens leave the prefix cache first, as in
    /// <see cref="Free"/>. <see cref="FreeDetached"/> releases them.
    /// </summary>
    public List<KvCacheBlock> DetachBlocks(Request request)
    {
        if (!_blocks.Remove(request.RequestId, out var held))
            held = [];
        int cached = _numCachedBlocks.GetValueOrDefault(request.RequestId);
        for (int i = request.NumComputedTokens / BlockSize; i < cached; i++)
            Pool.EvictCachedBlock(held[i]);
        _numCachedBlocks.Remove(request.RequestId);
        return held;
    }

    /// <summary>Releases blocks taken by <see cref="DetachBlocks"/>, last block first (the prefix is evicted last).</summary>
    public void FreeDetached(IReadOnlyList<KvCacheBlock> blocks) => Pool.FreeBlocks(blocks.Reverse());

    /// <summary>
    /// Releases a finished, aborted or preempted request's blocks, last block first. Blocks registered for
    /// tokens past <see cref="Request.NumComputedTokens"/> leave the prefix cache first: they were cached
    /// when the step was scheduled (as vLLM does), but that step never completed, so their KV is garbage.
    /// </summary>
    public void Free(Request request)
    {
        if (_blocks.Remove(request.RequestId, out var held))
        {
            int cached = _numCachedBlocks.GetValueOrDefault(request.RequestId);
            // Blocks below the first uncomputed token's block are hits or were written by completed steps;
            // the rest this request allocated itself, so only it can have registered them.
            for (int i = request.NumComputedTokens / BlockSize; i < cached; i++)
                Pool.EvictCachedBlock(held[i]);
            held.Reverse();
            Pool.FreeBlocks(held);
        }
        _numCachedBlocks.Remove(request.RequestId);
    }

    // Full attention reads every earlier position: the hit is the run of cached blocks from the start. The hashes
    // chain, so past the first miss nothing can be cached.
    private List<KvCacheBlock> FindLongestCachedPrefix(IReadOnlyList<BlockHash> blockHashes, int maxNumBlocks)
    {
        var hits = new List<KvCacheBlock>();
        for (int i = 0; i < maxNumBlocks && Pool.GetCachedBlock(blockHashes[i]) is { } block; i++)
            hits.Add(block);
        return hits;
    }

    /// <summary>Registers the request's blocks that are full once <paramref name="numTokens"/> tokens are computed.</summary>
    private void CacheFullBlocks(Request request, int numTokens)
    {
        if (!Pool.EnableCaching)
            return;
        UpdateBlockHashes(request);
        var held = _blocks[request.RequestId];
        int full = Math.Min(numTokens / BlockSize, held.Count);
        int from = _numCachedBlocks.GetValueOrDefault(request.RequestId);
        Pool.CacheFullBlocks(held, request.BlockHashes, from, full, BlockSize);
        _numCachedBlocks[request.RequestId] = Math.Max(from, full);
    }

    private void UpdateBlockHashes(Request request)
    {
        var hashes = request.BlockHashes;
        var tokens = request.AllTokenIds;
        for (int start = hashes.Count * BlockSize; start + BlockSize <= tokens.Count; start += BlockSize)
        {
            var blockTokens = new int[BlockSize];
            for (int i = 0; i < BlockSize; i++)
                blockTokens[i] = tokens[start + i];
            hashes.Add(BlockHash.Compute(hashes.Count == 0 ? null : hashes[^1], blockTokens));
        }
    }
}
