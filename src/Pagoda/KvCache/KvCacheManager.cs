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
/// </summary>
public sealed class KvCacheManager(int numBlocks, int blockSize, bool enablePrefixCaching, bool enableKvCacheEvents = false)
{
    private readonly Dictionary<string, List<KvCacheBlock>> _blocks = new();
    private readonly Dictionary<string, int> _numCachedBlocks = new();
    private long _queried, _hits;

    /// <summary>The pool.</summary>
    public BlockPool Pool { get; } = new(numBlocks, enablePrefixCaching, enableKvCacheEvents);

    /// <summary>The prefix-cache changes since the last call, oldest first (vLLM's take_events).</summary>
    public IReadOnlyList<KvCacheEvent> TakeEvents() => Pool.TakeEvents();

    /// <summary>Tokens per block.</summary>
    public int BlockSize { get; } = blockSize;

    /// <summary>Fraction of blocks held by requests.</summary>
    public double Usage => Pool.Usage;

    /// <summary>Counters since start.</summary>
    public PrefixCacheStats PrefixCacheStats => new(_queried, _hits);

    /// <summary>The block ids a request holds, in order (a new array on every call: callers may keep it).</summary>
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
    /// compute (its logits are needed). Counts towards the hit rate.
    /// </summary>
    public (List<KvCacheBlock> Blocks, int NumComputedTokens) GetComputedBlocks(Request request)
    {
        if (!Pool.EnableCaching || request.SkipPrefixCache)
            return ([], 0);
        UpdateBlockHashes(request);
        int maxHitBlocks = (request.NumTokens - 1) / BlockSize;
        var hits = new List<KvCacheBlock>();
        foreach (var hash in request.BlockHashes.Take(maxHitBlocks))
        {
            if (Pool.GetCachedBlock(hash) is not { } block)
                break;
            hits.Add(block);
        }
        _queried += request.NumTokens;
        _hits += hits.Count * BlockSize;
        return (hits, hits.Count * BlockSize);
    }

    /// <summary>
    /// Makes room for <paramref name="numNewTokens"/> more tokens after the request's computed ones (plus
    /// prefix-cache hits being adopted). Returns false, changing nothing, when the pool is too small.
    /// </summary>
    public bool AllocateSlots(Request request, int numNewTokens, IReadOnlyList<KvCacheBlock>? newComputedBlocks = null)
    {
        newComputedBlocks ??= [];
        var held = _blocks.TryGetValue(request.RequestId, out var list) ? list : [];
        int numComputed = request.NumComputedTokens + newComputedBlocks.Count * BlockSize;
        int required = (numComputed + numNewTokens + BlockSize - 1) / BlockSize;
        int numNew = Math.Max(0, required - held.Count - newComputedBlocks.Count);
        // Hit blocks sitting in the free queue stop being available once adopted.
        int evictableHits = 0;
        foreach (var b in newComputedBlocks)
            evictableHits += b.RefCount == 0 ? 1 : 0;
        if (numNew > Pool.NumFreeBlocks - evictableHits)
            return false;

        if (list == null)
            _blocks[request.RequestId] = held;
        if (newComputedBlocks.Count > 0)
        {
            Pool.Touch(newComputedBlocks);
            held.AddRange(newComputedBlocks);
            // Hits are in the cache already (and were announced when they entered it), as vLLM's num_cached_block says.
            _numCachedBlocks[request.RequestId] = Math.Max(_numCachedBlocks.GetValueOrDefault(request.RequestId), held.Count);
        }
        // A decode step needs a new block once every block-size tokens; the other steps allocate nothing.
        if (numNew > 0)
            held.AddRange(Pool.GetNewBlocks(numNew));
        CacheFullBlocks(request, Math.Min(numComputed + numNewTokens, request.NumTokens));
        return true;
    }

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
