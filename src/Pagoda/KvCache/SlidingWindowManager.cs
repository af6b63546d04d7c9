using Pagoda.Requests;

namespace Pagoda.KvCache;

/// <summary>
/// The block bookkeeping of a model whose every attention layer slides (vLLM's SlidingWindowManager): a query at
/// position p reads keys (p - window, p] only, so the blocks wholly before the next query's window are released
/// while the request runs, and a prefix-cache hit needs only the blocks that window covers. Released positions keep
/// the pool's null block in the request's table, so block b still holds positions b × block size onwards.
/// </summary>
internal sealed class SlidingWindowManager
{
    private readonly BlockPool _pool;
    private readonly int _blockSize;
    private readonly KvCacheBlock _nullBlock;

    /// <summary>A manager over <paramref name="pool"/>, which must reserve its null block.</summary>
    public SlidingWindowManager(BlockPool pool, int blockSize, int slidingWindow)
    {
        if (slidingWindow < 1)
            throw new ArgumentOutOfRangeException(nameof(slidingWindow), "A sliding window sees at least the query's own position.");
        _pool = pool;
        _blockSize = blockSize;
        _nullBlock = pool.NullBlock ?? throw new ArgumentException("A sliding-window pool reserves a null block.", nameof(pool));
        SlidingWindow = slidingWindow;
    }

    /// <summary>Keys a query sees, its own position included.</summary>
    public int SlidingWindow { get; }

    /// <summary>
    /// Leading tokens no query from <paramref name="numComputedTokens"/> on reads (vLLM's get_num_skipped_tokens): the
    /// next query sits at position numComputedTokens and sees (numComputedTokens - window, numComputedTokens]. Later
    /// queries of the same step start their windows later, so the step's first query sets the bound.
    /// </summary>
    public int GetNumSkippedTokens(int numComputedTokens) => Math.Max(0, numComputedTokens - SlidingWindow + 1);

    /// <summary>
    /// Releases the request's blocks wholly before the window of its next query and puts the null block in their
    /// place (vLLM's remove_skipped_blocks). Blocks go back last-first, like a finished request's, so the earlier
    /// prefix is evicted last; cached ones stay hits until evicted.
    /// </summary>
    public void RemoveSkippedBlocks(List<KvCacheBlock> blocks, int numComputedTokens)
    {
        int numSkippedBlocks = Math.Min(GetNumSkippedTokens(numComputedTokens) / _blockSize, blocks.Count);
        // Most decode steps cross no block boundary: nothing new to release, nothing to allocate.
        if (numSkippedBlocks == 0 || blocks[numSkippedBlocks - 1].IsNull)
            return;
        var removed = new List<KvCacheBlock>();
        for (int i = numSkippedBlocks - 1; i >= 0; i--)
        {
            // Earlier calls released everything before the first null block already.
            if (blocks[i].IsNull)
                break;
            removed.Add(blocks[i]);
            blocks[i] = _nullBlock;
        }
        _pool.FreeBlocks(removed);
    }

    /// <summary>
    /// The longest cache hit of at most <paramref name="maxNumBlocks"/> blocks (vLLM's find_longest_cache_hit for a
    /// sliding window): searched from the right, it ends at the first run of cached blocks long enough to hold the
    /// window - 1 keys that the first computed token reads; blocks before that run are the null block, since no
    /// query of the request reads them. A shorter run counts only when it starts the prompt (nothing is missing
    /// before it). The hashes chain over the whole prefix, so each hit block holds this request's own KV.
    /// </summary>
    public List<KvCacheBlock> FindLongestCacheHit(IReadOnlyList<BlockHash> blockHashes, int maxNumBlocks)
    {
        int neededBlocks = (SlidingWindow - 1 + _blockSize - 1) / _blockSize;
        var computed = new List<KvCacheBlock>(maxNumBlocks);
        for (int i = 0; i < maxNumBlocks; i++)
            computed.Add(_nullBlock);
        int contiguous = 0;
        for (int i = maxNumBlocks - 1; i >= 0; i--)
        {
            if (_pool.GetCachedBlock(blockHashes[i]) is not { } cached)
            {
                contiguous = 0;
                continue;
            }
            computed[i] = cached;
            if (++contiguous >= neededBlocks)
            {
                // Blocks past the run were hits of a run too short to use: the hit ends with this run.
                computed.RemoveRange(i + contiguous, computed.Count - i - contiguous);
                return computed;
            }
        }
        // Reaching the start, the run in hand (if any) begins at block 0.
        computed.RemoveRange(contiguous, computed.Count - contiguous);
        return computed;
    }

    /// <summary>
    /// How many of a new request's hit blocks (<paramref name="numHeldBlocks"/> already held) lie wholly before
    /// the window of its first computed token at <paramref name="numComputedTokens"/>: they are not adopted, the
    /// null block stands in (vLLM's allocate_new_computed_blocks).
    /// </summary>
    public int NumSkippedHitBlocks(int numComputedTokens, int numHeldBlocks, int numHitBlocks) =>
        Math.Clamp(GetNumSkippedTokens(numComputedTokens) / _blockSize - numHeldBlocks, 0, numHitBlocks);

    /// <summary>The null block, the placeholder of released positions.</summary>
    public KvCacheBlock NullBlock => _nullBlock;
}
