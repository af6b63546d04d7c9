using Pagoda.KvCache;
using Pagoda.Requests;

namespace Pagoda.Tests.KvCache;

/// <summary>
/// The events the KV cache records, as vLLM's block pool records them: one BlockStored per run of newly full
/// blocks (hits are not announced again), one BlockRemoved per evicted hash, AllBlocksCleared on a reset.
/// </summary>
public class KvCacheEventTests
{
    private static Request Req(string id, params int[] tokens) =>
        new(id, tokens, new SamplingParams(), 16, 0, new HashSet<int>());

    private static List<BlockHash> Chain(int[] tokens, int blockSize)
    {
        var chain = new List<BlockHash>();
        for (int start = 0; start + blockSize <= tokens.Length; start += blockSize)
            chain.Add(BlockHash.Compute(chain.Count == 0 ? null : chain[^1], tokens.AsSpan(start, blockSize)));
        return chain;
    }

    // Prefill then finish: the scheduler's calls for a request that computes all its prompt tokens.
    private static void RunPrompt(KvCacheManager kv, Request r)
    {
        var (hits, hitTokens) = kv.GetComputedBlocks(r);
        Assert.True(kv.AllocateSlots(r, r.NumTokens - hitTokens, hits));
        r.NumComputedTokens = r.NumTokens;
        kv.Free(r);
    }

    [Fact]
    public void FullBlocksAreStoredAsOneRunWithTheirParentAndTokens()
    {
        var kv = new KvCacheManager(16, 4, enablePrefixCaching: true, enableKvCacheEvents: true);
        int[] a = Enumerable.Range(100, 10).ToArray(); // two full blocks and a partial one
        var r = Req("a", a);
        Assert.True(kv.AllocateSlots(r, 10));
        var chain = Chain(a, 4);
        var stored = Assert.IsType<BlockStored>(Assert.Single(kv.TakeEvents()));
        Assert.Equal(chain.Select(h => h.Value), stored.BlockHashes);
        Assert.Null(stored.ParentBlockHash);
        Assert.Equal(a[..8], stored.TokenIds);
        Assert.Equal((4, (int?)null, "GPU", (string?)null), (stored.BlockSize, stored.LoraId, stored.Medium, stored.LoraName));
        Assert.Empty(kv.TakeEvents());

        // Two decoded tokens fill the third block: a run of one, chained to the second block.
        r.NumComputedTokens = 10;
        r.AppendOutputToken(7, 1000);
        Assert.True(kv.AllocateSlots(r, 1));
        r.NumComputedTokens = 11;
        r.AppendOutputToken(8, 1000);
        Assert.True(kv.AllocateSlots(r, 1));
        var third = Assert.IsType<BlockStored>(Assert.Single(kv.TakeEvents()));
        Assert.Equal(chain[1].Value, third.ParentBlockHash);
        Assert.Equal([108, 109, 7, 8], third.TokenIds);
        Assert.Equal([BlockHash.Compute(chain[1], [108, 109, 7, 8]).Value], third.BlockHashes);
    }

    [Fact]
    public void HitsAreNotAnnouncedAgainAndNewBlocksChainToThem()
    {
        var kv = new KvCacheManager(16, 4, enablePrefixCaching: true, enableKvCacheEvents: true);
        int[] a = Enumerable.Range(100, 9).ToArray();
        RunPrompt(kv, Req("a", a));
        kv.TakeEvents();
        int[] b = [.. a[..8], 1, 2, 3, 4, 5];
        RunPrompt(kv, Req("b", b));
        var stored = Assert.IsType<BlockStored>(Assert.Single(kv.TakeEvents()));
        var chain = Chain(b, 4);
        Assert.Equal([chain[2].Value], stored.BlockHashes);
        Assert.Equal(chain[1].Value, stored.ParentBlockHash);
        Assert.Equal(Chain(a, 4)[1].Value, stored.ParentBlockHash);
    }

    [Fact]
    public void EvictingACachedBlockRemovesItsHash()
    {
        var kv = new KvCacheManager(3, 4, enablePrefixCaching: true, enableKvCacheEvents: true);
        int[] a = Enumerable.Range(100, 9).ToArray(); // blocks 0, 1 cached; 2 partial
        RunPrompt(kv, Req("a", a));
        var chain = Chain(a, 4);
        kv.TakeEvents();
        // Freed last-first: the queue is 2, 1, 0, so a new 3-block request evicts block 1 then block 0.
        RunPrompt(kv, Req("c", Enumerable.Range(500, 9).ToArray()));
        var events = kv.TakeEvents();
        Assert.Equal([chain[1].Value, chain[0].Value],
            events.OfType<BlockRemoved>().Select(r => Assert.Single(r.BlockHashes)));
        Assert.All(events.OfType<BlockRemoved>(), r => Assert.Equal("GPU", r.Medium));
        Assert.IsType<BlockStored>(events[^1]);
    }

    [Fact]
    public void UnwrittenBlocksLeavingTheCacheAreRemoved()
    {
        var kv = new KvCacheManager(8, 4, enablePrefixCaching: true, enableKvCacheEvents: true);
        var r = Req("a", Enumerable.Range(100, 8).ToArray());
        Assert.True(kv.AllocateSlots(r, 8));
        var stored = Assert.IsType<BlockStored>(Assert.Single(kv.TakeEvents()));
        kv.Free(r); // the step never completed: nothing computed
        Assert.Equal(stored.BlockHashes, kv.TakeEvents().Cast<BlockRemoved>().SelectMany(e => e.BlockHashes));
    }

    [Fact]
    public void AResetClearsAllOnlyWhenItSucceeds()
    {
        var kv = new KvCacheManager(8, 4, enablePrefixCaching: true, enableKvCacheEvents: true);
        var r = Req("a", Enumerable.Range(100, 8).ToArray());
        Assert.True(kv.AllocateSlots(r, 8));
        kv.TakeEvents();
        Assert.False(kv.Pool.ResetPrefixCache()); // a request holds blocks
        Assert.Empty(kv.TakeEvents());
        r.NumComputedTokens = 8;
        kv.Free(r);
        Assert.True(kv.Pool.ResetPrefixCache());
        Assert.IsType<AllBlocksCleared>(Assert.Single(kv.TakeEvents()));
    }

    [Fact]
    public void NothingIsRecordedWhenEventsOrCachingAreOff()
    {
        foreach (var kv in new[] { new KvCacheManager(8, 4, true), new KvCacheManager(8, 4, false, enableKvCacheEvents: true) })
        {
            RunPrompt(kv, Req("a", Enumerable.Range(100, 9).ToArray()));
            kv.Pool.ResetPrefixCache();
            Assert.Empty(kv.TakeEvents());
            Assert.False(kv.Pool.EnableKvCacheEvents);
        }
    }
}
