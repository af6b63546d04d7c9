using Pagoda.KvCache;
using Pagoda.Requests;

namespace Pagoda.Tests.KvCache;

/// <summary>Slot allocation, prefix hits (last token recomputed) and release order, with exact block ids.</summary>
public class KvCacheManagerTests
{
    private static Request Req(string id, params int[] tokens) =>
        new(id, tokens, new SamplingParams(), 16, 0, new HashSet<int>());

    [Fact]
    public void AllocatesCeilOfTokensOverBlockSize()
    {
        var kv = new KvCacheManager(8, 4, enablePrefixCaching: true);
        var r = Req("a", Enumerable.Range(0, 10).ToArray());
        Assert.True(kv.AllocateSlots(r, 10));
        Assert.Equal([0, 1, 2], kv.GetBlockIds("a"));
        r.NumComputedTokens = 10;
        r.AppendOutputToken(99, 1000);
        Assert.True(kv.AllocateSlots(r, 1)); // token 11 still fits block 2
        Assert.Equal([0, 1, 2], kv.GetBlockIds("a"));
    }

    [Fact]
    public void RefusesWithoutChangingAnything()
    {
        var kv = new KvCacheManager(2, 4, enablePrefixCaching: true);
        var r = Req("a", Enumerable.Range(0, 9).ToArray());
        Assert.False(kv.AllocateSlots(r, 9));
        Assert.Empty(kv.GetBlockIds("a"));
        Assert.Equal(2, kv.Pool.NumFreeBlocks);
    }

    [Fact]
    public void PrefixHitReusesFullBlocksButRecomputesTheLastToken()
    {
        var kv = new KvCacheManager(10, 4, enablePrefixCaching: true);
        int[] prompt = Enumerable.Range(100, 12).ToArray(); // exactly 3 full blocks
        var a = Req("a", prompt);
        Assert.True(kv.AllocateSlots(a, 12));
        Assert.Equal([0, 1, 2], kv.GetBlockIds("a"));

        var b = Req("b", prompt);
        var (hits, computed) = kv.GetComputedBlocks(b);
        // The last block holds the last prompt token, whose logits are needed: only 2 blocks are hits.
        Assert.Equal([0, 1], hits.Select(x => x.BlockId));
        Assert.Equal(8, computed);
        Assert.True(kv.AllocateSlots(b, 4, hits));
        Assert.Equal([0, 1, 3], kv.GetBlockIds("b"));
        Assert.Equal(2, kv.Pool[0].RefCount);
        Assert.Equal(new PrefixCacheStats(12, 8), kv.PrefixCacheStats);
    }

    [Fact]
    public void FreedCachedBlocksAreHitUntilEvictedTailFirst()
    {
        var kv = new KvCacheManager(4, 2, enablePrefixCaching: true);
        var a = Req("a", 1, 2, 3, 4, 5, 6, 7);
        Assert.True(kv.AllocateSlots(a, 7));
        a.NumComputedTokens = 7; // the step that wrote them completed
        kv.Free(a);
        // Freed last block first: the prefix (block 0) is evicted last.
        Assert.Equal([3, 2, 1, 0], kv.Pool.FreeQueue.Select(b => b.BlockId));

        var b = Req("b", 1, 2, 3, 4, 9);
        var (hits, computed) = kv.GetComputedBlocks(b);
        Assert.Equal([0, 1], hits.Select(x => x.BlockId));
        Assert.Equal(4, computed);
        Assert.True(kv.AllocateSlots(b, 1, hits));
        Assert.Equal([0, 1, 3], kv.GetBlockIds("b")); // the new block came from the head (3)
        Assert.Equal([2], kv.Pool.FreeQueue.Select(x => x.BlockId));
    }

    [Fact]
    public void NoCachingMeansNoHits()
    {
        var kv = new KvCacheManager(4, 2, enablePrefixCaching: false);
        var a = Req("a", 1, 2, 3, 4, 5);
        Assert.True(kv.AllocateSlots(a, 5));
        kv.Free(a);
        Assert.Empty(kv.GetComputedBlocks(Req("b", 1, 2, 3, 4, 5)).Blocks);
    }

    [Fact]
    public void HitBlocksInTheFreeQueueCountAgainstAvailability()
    {
        var kv = new KvCacheManager(3, 2, enablePrefixCaching: true);
        var a = Req("a", 1, 2, 3, 4, 5);
        Assert.True(kv.AllocateSlots(a, 5));
        a.NumComputedTokens = 5;
        kv.Free(a);
        // b hits blocks 0 and 1 (both free) and needs 2 more for 5 new tokens: only 1 other block exists.
        var b = Req("b", 1, 2, 3, 4, 5, 6, 7, 8, 9);
        var (hits, _) = kv.GetComputedBlocks(b);
        Assert.Equal(2, hits.Count);
        Assert.False(kv.AllocateSlots(b, 5, hits));
        Assert.Equal(3, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Pool[0].RefCount);
    }

    [Fact]
    public void FreeingBeforeTheStepCompletedUncachesOnlyWhatThatStepWasToWrite()
    {
        var kv = new KvCacheManager(8, 2, enablePrefixCaching: true);
        var a = Req("a", 1, 2, 3, 4, 5, 6, 7);
        Assert.True(kv.AllocateSlots(a, 3)); // step 1: tokens 0-2, block 0 full
        a.NumComputedTokens = 3;
        Assert.True(kv.AllocateSlots(a, 4)); // step 2: tokens 3-6, blocks 1-2 full, registered now
        Assert.Equal([0, 1, 2, 3], kv.GetBlockIds("a"));
        Assert.NotNull(kv.Pool[2].Hash);
        kv.Free(a); // step 2 never completed: block 1 (token 3 unwritten) and block 2 leave the cache
        Assert.NotNull(kv.Pool[0].Hash);
        Assert.Null(kv.Pool[1].Hash);
        Assert.Null(kv.Pool[2].Hash);

        var (hits, computed) = kv.GetComputedBlocks(Req("b", 1, 2, 3, 4, 5, 6, 7));
        Assert.Equal([0], hits.Select(x => x.BlockId));
        Assert.Equal(2, computed);
    }
}
