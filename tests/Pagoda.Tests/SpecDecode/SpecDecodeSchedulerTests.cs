using Pagoda.KvCache;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.Tests.SpecDecode;

/// <summary>
/// Draft tokens in the scheduler (vLLM's spec decode bookkeeping): they count against the budget and are cut off by it,
/// they get KV slots with the request's own tokens, rejected ones roll back the computed count, a step stops at the
/// token that ends a request, preemption drops them, and a draft model's lookahead slots are allocated past them.
/// </summary>
public class SpecDecodeSchedulerTests
{
    private static Request Req(string id, int promptLength, int maxTokens = 20) =>
        new(id, Enumerable.Range(100, promptLength).ToArray(), new SamplingParams(), maxTokens, 0, new HashSet<int> { 2 });

    private static Dictionary<string, int[]> Sampled(SchedulerOutput o, params int[] tokens) =>
        o.Scheduled.Where(s => s.SamplesToken).ToDictionary(s => s.Request.RequestId, _ => tokens);

    [Fact]
    public void DraftsAreComputedWithTheLastTokenAndRejectedOnesRollBack()
    {
        var kv = new KvCacheManager(32, 4, enablePrefixCaching: true);
        var s = new Scheduler(new SchedulerConfig(64, 4, 100), kv);
        var a = Req("a", 6);
        s.AddRequest(a);
        var o1 = s.Schedule();
        Assert.Equal([0, 1], o1.Scheduled[0].BlockIds);
        s.Update(o1, Sampled(o1, 7));
        a.SpecTokenIds = [8, 9, 10];

        // The last token (position 6) and three drafts (7..9): ten positions, three blocks.
        var o2 = s.Schedule();
        var step = Assert.Single(o2.Scheduled);
        Assert.Equal(4, step.NumTokens);
        Assert.Equal([8, 9, 10], step.SpecTokenIds);
        Assert.Equal([0, 1, 2], step.BlockIds);
        Assert.Equal(4, o2.TotalTokens);

        // Draft 8 accepted, 9 rejected in favour of 11: positions 8 and 9 hold rejected drafts' KV and are computed again.
        s.Update(o2, Sampled(o2, 8, 11));
        Assert.Equal([100, 101, 102, 103, 104, 105, 7, 8, 11], a.AllTokenIds);
        Assert.Equal(8, a.NumComputedTokens);
        Assert.Empty(a.SpecTokenIds);

        var o3 = s.Schedule();
        Assert.Equal(1, o3.Scheduled[0].NumTokens);
        Assert.Equal([0, 1, 2], o3.Scheduled[0].BlockIds);
        // Only blocks of known tokens are cached: block 0 (positions 0..3) and block 1 (4..7: 104, 105, 7, 8), never one
        // holding a draft.
        Assert.Equal(2, a.BlockHashes.Count);
        Assert.Equal([0, 1], a.BlockHashes.Select(h => kv.Pool.GetCachedBlock(h)!.BlockId));
        Assert.Equal([104, 105, 7, 8], a.BlockHashes[1].TokenIds);
    }

    [Fact]
    public void TheBudgetCutsDraftsOff()
    {
        var s = new Scheduler(new SchedulerConfig(3, 4, 100), new KvCacheManager(32, 4, enablePrefixCaching: false));
        var a = Req("a", 3);
        s.AddRequest(a);
        var o1 = s.Schedule();
        s.Update(o1, Sampled(o1, 7));
        a.SpecTokenIds = [8, 9, 10, 11];
        var o2 = s.Schedule();
        Assert.Equal(3, o2.Scheduled[0].NumTokens);
        Assert.Equal([8, 9], o2.Scheduled[0].SpecTokenIds);
        s.Update(o2, Sampled(o2, 8, 9, 12));   // both accepted, and the token after them
        Assert.Equal(6, a.NumComputedTokens);
        Assert.Equal(7, a.NumTokens);
    }

    [Fact]
    public void AStepStopsAtTheTokenThatEndsTheRequest()
    {
        var s = new Scheduler(new SchedulerConfig(64, 4, 100), new KvCacheManager(32, 4, enablePrefixCaching: false));
        var a = Req("a", 3);
        var b = Req("b", 3, maxTokens: 3);
        s.AddRequest(a);
        s.AddRequest(b);
        var o1 = s.Schedule();
        s.Update(o1, Sampled(o1, 7));
        (a.SpecTokenIds, b.SpecTokenIds) = ([2, 9], [8, 9]);
        var o2 = s.Schedule();
        var finished = s.Update(o2, new Dictionary<string, int[]> { ["a"] = [2, 9, 10], ["b"] = [8, 9, 10] });
        // a: EOS (2) accepted first ends it; b: max_tokens 3 ends it after two of the three.
        Assert.Equal([a, b], finished);
        Assert.Equal([7, 2], a.OutputTokenIds);
        Assert.Equal(RequestStatus.FinishedStopped, a.Status);
        Assert.Equal([7, 8, 9], b.OutputTokenIds);
        Assert.Equal(RequestStatus.FinishedLength, b.Status);
        Assert.Equal(0, s.KvCache.Usage);
    }

    [Fact]
    public void PreemptionDropsDrafts()
    {
        // 4 blocks of 2: a and b take 2 each for their 3-token prompts; a's drafts need a third.
        var s = new Scheduler(new SchedulerConfig(100, 4, 100), new KvCacheManager(4, 2, enablePrefixCaching: false));
        var (a, b) = (Req("a", 3), Req("b", 3));
        s.AddRequest(a);
        s.AddRequest(b);
        var o1 = s.Schedule();
        s.Update(o1, Sampled(o1, 7));
        b.SpecTokenIds = [8, 9];
        var o2 = s.Schedule();
        Assert.Equal([b], o2.Preempted);
        Assert.Empty(b.SpecTokenIds);
        Assert.Equal(0, b.NumComputedTokens);
    }

    [Fact]
    public void ADraftModelsLookaheadSlotsAreAllocatedWithinTheContext()
    {
        var kv = new KvCacheManager(32, 4, enablePrefixCaching: false);
        var s = new Scheduler(new SchedulerConfig(64, 4, 12, NumLookaheadTokens: 3), kv);
        var a = Req("a", 6);
        s.AddRequest(a);
        var o1 = s.Schedule();
        Assert.Equal([0, 1, 2], o1.Scheduled[0].BlockIds);   // 6 tokens and 3 lookahead slots
        s.Update(o1, Sampled(o1, 7));
        a.SpecTokenIds = [8, 9, 10];
        var o2 = s.Schedule();
        Assert.Equal([0, 1, 2], o2.Scheduled[0].BlockIds);   // 10 tokens and 2 more slots: the 12 of max-model-len
    }
}
