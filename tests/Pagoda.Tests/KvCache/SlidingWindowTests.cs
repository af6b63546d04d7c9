using Pagoda.KvCache;
using Pagoda.Requests;

namespace Pagoda.Tests.KvCache;

/// <summary>
/// A model whose every layer slides (vLLM's SlidingWindowManager): block 0 is the null block, blocks wholly before
/// the next query's window are released as the request advances, and a prefix hit needs only the window's blocks.
/// With a window of 4 a query at position p reads p-3 .. p; with blocks of 2, block b (positions 2b, 2b+1) is
/// released once 2b + 1 &lt; numComputed - 3, i.e. numComputed ≥ 2b + 5.
/// </summary>
public class SlidingWindowTests
{
    private static Request Req(string id, params int[] tokens) =>
        new(id, tokens, new SamplingParams(), 64, 0, new HashSet<int>());

    private static int[] Range(int start, int count) => Enumerable.Range(start, count).ToArray();

    // One step of the request's life as the scheduler drives it: allocate, then the step completes.
    private static void Step(KvCacheManager kv, Request r, int numTokens, int? sampled = null)
    {
        Assert.True(kv.AllocateSlots(r, numTokens));
        r.NumComputedTokens += numTokens;
        if (sampled is int token)
            r.AppendOutputToken(token, 1000);
    }

    [Fact]
    public void BlockZeroIsTheNullBlockAndNeverHandedOut()
    {
        var kv = new KvCacheManager(4, 2, enablePrefixCaching: true, slidingWindow: 4);
        Assert.True(kv.Pool[0].IsNull);
        Assert.Same(kv.Pool[0], kv.Pool.NullBlock);
        Assert.Equal([1, 2, 3], kv.Pool.FreeQueue.Select(b => b.BlockId));
        Assert.Equal(3, kv.Pool.NumUsableBlocks);
        Assert.Equal(3, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Usage);

        var r = Req("a", Range(0, 6));
        Assert.True(kv.AllocateSlots(r, 6));
        Assert.Equal([1, 2, 3], kv.GetBlockIds("a"));
        Assert.Equal(1.0, kv.Usage);
        Assert.False(kv.AllocateSlots(Req("b", 1), 1)); // the null block is no spare block
    }

    [Fact]
    public void WithoutAWindowBlockZeroIsAnOrdinaryBlock()
    {
        var kv = new KvCacheManager(4, 2, enablePrefixCaching: true);
        Assert.Null(kv.Pool.NullBlock);
        Assert.Equal(4, kv.Pool.NumUsableBlocks);
        var r = Req("a", Range(0, 8));
        Assert.True(kv.AllocateSlots(r, 8));
        Assert.Equal([0, 1, 2, 3], kv.GetBlockIds("a"));
    }

    [Fact]
    public void DecodeReleasesEachBlockOnceTheWindowOfTheNextQueryHasPassedIt()
    {
        var kv = new KvCacheManager(8, 2, enablePrefixCaching: true, slidingWindow: 4);
        var r = Req("a", Range(100, 4));
        Step(kv, r, 4, sampled: 1);
        Assert.Equal([1, 2], kv.GetBlockIds("a"));

        // numComputed before each decode step, and the table that step runs with.
        (int Computed, int[] Table)[] expected =
        [
            (4, [1, 2, 3]), // query 4 reads 1..4: block 0 (0, 1) still needed
            (5, [0, 2, 3]), // query 5 reads 2..5: block 0 released
            (6, [0, 2, 3, 4]), // query 6 reads 3..6: block 1 (2, 3) still needed; a new block for 6
            (7, [0, 0, 3, 4]), // query 7 reads 4..7
            (8, [0, 0, 3, 4, 5]), // the new block comes from the queue's head: released blocks wait behind unused ones
            (9, [0, 0, 0, 4, 5]),
        ];
        foreach (var (computed, table) in expected)
        {
            Assert.Equal(computed, r.NumComputedTokens);
            Step(kv, r, 1, sampled: computed);
            Assert.Equal(table, kv.GetBlockIds("a"));
        }
        // Released blocks keep their hashes: full prompt blocks stay hits until evicted, like a finished request's.
        Assert.NotNull(kv.Pool[2].Hash);
        Assert.Equal(0, kv.Pool[2].RefCount);
        Assert.Equal([6, 7, 1, 2, 3], kv.Pool.FreeQueue.Select(b => b.BlockId));

        r.NumComputedTokens = 10;
        kv.Free(r);
        Assert.Equal(7, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Usage);
        Assert.Equal(0, kv.Pool[0].RefCount);
        Assert.True(kv.Pool.ResetPrefixCache());
    }

    [Fact]
    public void ChunkedPrefillOfAPromptLongerThanThePoolFitsTheWindow()
    {
        // 4 usable blocks hold 8 tokens; the prompt has 16, in chunks of 4.
        var kv = new KvCacheManager(5, 2, enablePrefixCaching: true, slidingWindow: 4);
        var r = Req("a", Range(100, 16));
        (int[] Table, int[] Free)[] expected =
        [
            ([1, 2], [3, 4]),
            ([1, 2, 3, 4], []), // queries 4..7 read 1..7: nothing to release yet
            ([0, 0, 3, 4, 2, 1], []), // queries 8..11 read 5..11: blocks 1 and 2 released, then reused
            ([0, 0, 0, 0, 2, 1, 4, 3], []),
        ];
        foreach (var (table, free) in expected)
        {
            Step(kv, r, 4);
            Assert.Equal(table, kv.GetBlockIds("a"));
            Assert.Equal(free, kv.Pool.FreeQueue.Select(b => b.BlockId));
        }
        kv.Free(r);
        Assert.Equal(4, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Usage);

        // Without the window the third chunk finds no room.
        var full = new KvCacheManager(5, 2, enablePrefixCaching: true);
        var f = Req("a", Range(100, 16));
        Step(full, f, 4);
        Step(full, f, 4);
        Assert.False(full.AllocateSlots(f, 4));
    }

    [Fact]
    public void AllocationCountsBlocksTheWindowReleasesInTheSameCall()
    {
        // One usable block is free; the step releases two: enough for the two it needs.
        var kv = new KvCacheManager(6, 2, enablePrefixCaching: false, slidingWindow: 4);
        var r = Req("a", Range(100, 12));
        Step(kv, r, 8);
        Assert.Equal([1, 2, 3, 4], kv.GetBlockIds("a"));
        Assert.Equal(1, kv.Pool.NumFreeBlocks);
        Assert.True(kv.AllocateSlots(r, 4)); // queries 8..11 read 5..11: blocks 1 and 2 go
        Assert.Equal([0, 0, 3, 4, 5, 2], kv.GetBlockIds("a"));
    }

    [Fact]
    public void CacheHitNeedsOnlyTheBlocksTheWindowCoversBeforeTheHit()
    {
        var kv = new KvCacheManager(8, 2, enablePrefixCaching: true, slidingWindow: 4);
        int[] prompt = Range(100, 12);
        var a = Req("a", prompt);
        Step(kv, a, 4);
        Step(kv, a, 4);
        Step(kv, a, 4); // releases a's blocks 1 and 2 to the queue's head
        Assert.Equal([0, 0, 3, 4, 5, 6], kv.GetBlockIds("a"));
        kv.Free(a);
        Assert.Equal([7, 2, 1, 6, 5, 4, 3], kv.Pool.FreeQueue.Select(b => b.BlockId));
        // Another prompt evicts the three blocks at the head: a's first two blocks leave the cache.
        Step(kv, Req("x", Range(500, 6)), 6);
        Assert.Null(kv.Pool.GetCachedBlock(a.BlockHashes[0]));
        Assert.Null(kv.Pool.GetCachedBlock(a.BlockHashes[1]));

        var b = Req("b", [.. prompt, 999]);
        var (hits, computed) = kv.GetComputedBlocks(b);
        // Token 12 reads 9..12: blocks 5 (8, 9) and 6 (10, 11) suffice; the null block stands for the rest.
        Assert.Equal([0, 0, 0, 0, 5, 6], hits.Select(h => h.BlockId));
        Assert.Equal(12, computed);
        Assert.Equal(new PrefixCacheStats(13, 12), kv.PrefixCacheStats);
        Assert.True(kv.AllocateSlots(b, 1, hits));
        Assert.Equal([0, 0, 0, 0, 5, 6, 4], kv.GetBlockIds("b"));
        Assert.Equal(1, kv.Pool[5].RefCount);
        Assert.Equal(0, kv.Pool[0].RefCount);

        // A full-attention manager in the same state finds nothing: its first block is gone.
        var full = new KvCacheManager(8, 2, enablePrefixCaching: true);
        var fa = Req("a", prompt);
        Step(full, fa, 12);
        full.Free(fa);
        full.Pool.EvictCachedBlock(full.Pool[0]);
        Assert.Empty(full.GetComputedBlocks(Req("b", [.. prompt, 999])).Blocks);
    }

    [Fact]
    public void CacheHitIsTheRightmostRunLongEnoughForTheWindow()
    {
        // Window 6 with blocks of 2: the first computed token reads 5 earlier keys, 3 blocks.
        var kv = new KvCacheManager(10, 2, enablePrefixCaching: true, slidingWindow: 6);
        int[] prompt = Range(100, 12);
        var a = Req("a", prompt);
        Step(kv, a, 12);
        Assert.Equal([1, 2, 3, 4, 5, 6], kv.GetBlockIds("a"));
        kv.Free(a);
        kv.Pool.EvictCachedBlock(kv.Pool[5]); // [1, 2, 3, 4, -, 6]: the run 6 is too short, 2..4 is long enough

        var (hits, computed) = kv.GetComputedBlocks(Req("b", [.. prompt, 999]));
        Assert.Equal([0, 2, 3, 4], hits.Select(h => h.BlockId));
        Assert.Equal(8, computed);

        kv.Pool.EvictCachedBlock(kv.Pool[3]); // [1, 2, -, 4, -, 6]: no run is long enough but the one at the start
        (hits, computed) = kv.GetComputedBlocks(Req("c", [.. prompt, 999]));
        Assert.Equal([1, 2], hits.Select(h => h.BlockId));
        Assert.Equal(4, computed);

        kv.Pool.EvictCachedBlock(kv.Pool[1]); // nothing at the start either
        Assert.Empty(kv.GetComputedBlocks(Req("d", [.. prompt, 999])).Blocks);
    }

    [Fact]
    public void HitBlocksInTheFreeQueueCountAgainstAvailabilityButTheNullBlockDoesNot()
    {
        var kv = new KvCacheManager(6, 2, enablePrefixCaching: true, slidingWindow: 4);
        int[] prompt = Range(100, 8);
        var a = Req("a", prompt);
        Step(kv, a, 8);
        kv.Free(a);
        Step(kv, Req("x", Range(500, 4)), 4); // takes block 5 and a's last block, freed first
        Assert.Equal([3, 2, 1], kv.Pool.FreeQueue.Select(b => b.BlockId));
        Assert.Null(kv.Pool.GetCachedBlock(a.BlockHashes[3]));

        var b = Req("b", [.. prompt, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var (hits, computed) = kv.GetComputedBlocks(b);
        Assert.Equal([0, 2, 3], hits.Select(h => h.BlockId)); // 6 tokens hit; token 6 reads 3..6
        Assert.Equal(6, computed);
        // 4 new tokens need 2 more blocks: 3 are free, but adopting blocks 2 and 3 takes 2 of them.
        Assert.False(kv.AllocateSlots(b, 4, hits));
        Assert.Equal(3, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Pool[2].RefCount);
        Assert.True(kv.AllocateSlots(b, 2, hits)); // one more block; the null placeholder costs none
        Assert.Equal([0, 2, 3, 1], kv.GetBlockIds("b"));
        Assert.Equal(0, kv.Pool.NumFreeBlocks);
    }

    [Fact]
    public void FreeingAnUnfinishedStepUncachesOnlyItsBlocksAndSkipsTheNullBlock()
    {
        var kv = new KvCacheManager(8, 2, enablePrefixCaching: true, slidingWindow: 4);
        var a = Req("a", Range(100, 14));
        Step(kv, a, 8);
        Assert.True(kv.AllocateSlots(a, 6)); // blocks 1, 2 released; the step (8..13) never completes
        Assert.Equal([0, 0, 3, 4, 5, 6, 7], kv.GetBlockIds("a"));
        Assert.NotNull(kv.Pool[6].Hash);
        kv.Free(a);
        Assert.NotNull(kv.Pool[4].Hash); // written by the first step
        Assert.Null(kv.Pool[5].Hash);
        Assert.Null(kv.Pool[6].Hash);
        Assert.Equal(7, kv.Pool.NumFreeBlocks);
        Assert.DoesNotContain(0, kv.Pool.FreeQueue.Select(b => b.BlockId));
    }
}
