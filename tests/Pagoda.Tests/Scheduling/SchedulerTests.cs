using Pagoda.KvCache;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.Tests.Scheduling;

/// <summary>The unified token budget, chunked prefill, FCFS admission and preemption, without a model.</summary>
public class SchedulerTests
{
    private static Request Req(string id, int promptLength, int maxTokens = 8) =>
        new(id, Enumerable.Range(1000 * id[0], promptLength).ToArray(), new SamplingParams(), maxTokens, 0, new HashSet<int>());

    private static Dictionary<string, int[]> Tokens(SchedulerOutput o, int token = 7) =>
        o.Scheduled.Where(s => s.SamplesToken).ToDictionary(s => s.Request.RequestId, _ => new[] { token });

    private static (string, int)[] Plan(SchedulerOutput o) => o.Scheduled.Select(s => (s.Request.RequestId, s.NumTokens)).ToArray();

    [Fact]
    public void LongPromptIsChunkedWhileDecodesContinue()
    {
        var s = new Scheduler(new SchedulerConfig(8, 4, 100), new KvCacheManager(32, 4, true));
        var a = Req("a", 3);
        s.AddRequest(a);
        var o1 = s.Schedule();
        Assert.Equal([("a", 3)], Plan(o1));
        s.Update(o1, Tokens(o1));

        var b = Req("b", 20);
        s.AddRequest(b);
        var o2 = s.Schedule();
        Assert.Equal([("a", 1), ("b", 7)], Plan(o2)); // running first, the rest of the budget to b
        s.Update(o2, Tokens(o2));
        Assert.Equal(7, b.NumComputedTokens);
        Assert.Equal(0, b.NumOutputTokens); // a partial prefill samples nothing

        var o3 = s.Schedule();
        Assert.Equal([("a", 1), ("b", 7)], Plan(o3));
        s.Update(o3, Tokens(o3));
        var o4 = s.Schedule();
        Assert.Equal([("a", 1), ("b", 6)], Plan(o4));
        s.Update(o4, Tokens(o4));
        Assert.Equal(1, b.NumOutputTokens);
    }

    [Fact]
    public void MaxNumSeqsLimitsAdmission()
    {
        var s = new Scheduler(new SchedulerConfig(100, 2, 100), new KvCacheManager(32, 4, true));
        foreach (var id in new[] { "a", "b", "c" })
            s.AddRequest(Req(id, 2));
        Assert.Equal([("a", 2), ("b", 2)], Plan(s.Schedule()));
        Assert.Equal(1, s.NumWaiting);
    }

    [Fact]
    public void NewestRunningRequestIsPreemptedAndRecomputedLater()
    {
        // 4 blocks of 2 tokens: a and b each take 2 blocks for their 3-token prompts.
        var kv = new KvCacheManager(4, 2, enablePrefixCaching: false);
        var s = new Scheduler(new SchedulerConfig(100, 4, 100), kv);
        var a = Req("a", 3);
        var b = Req("b", 3);
        s.AddRequest(a);
        s.AddRequest(b);
        var o1 = s.Schedule();
        s.Update(o1, Tokens(o1));
        Assert.Equal(0, kv.Pool.NumFreeBlocks);

        // Both have 4 tokens: the 4th still fits their second block.
        var o2 = s.Schedule();
        Assert.Equal([("a", 1), ("b", 1)], Plan(o2));
        s.Update(o2, Tokens(o2));

        // a's 5th token needs a third block: b (the newest) gives way.
        var o3 = s.Schedule();
        Assert.Equal([("a", 1)], Plan(o3));
        Assert.Equal([b], o3.Preempted);
        Assert.Equal(RequestStatus.Preempted, b.Status);
        Assert.Equal(0, b.NumComputedTokens);
        Assert.Equal(1, s.NumPreemptions);
        s.Update(o3, Tokens(o3));

        // b's prompt and its sampled token are recomputed once blocks are free again.
        s.FinishRequests([a], RequestStatus.FinishedAborted);
        var o4 = s.Schedule();
        Assert.Equal([("b", 5)], Plan(o4));
        Assert.True(o4.Scheduled[0].SamplesToken);
    }

    [Fact]
    public void FinishedAndAbortedRequestsLeaveThePoolEmpty()
    {
        var kv = new KvCacheManager(16, 4, enablePrefixCaching: true);
        var s = new Scheduler(new SchedulerConfig(64, 8, 100), kv);
        var a = Req("a", 5, maxTokens: 2);
        var b = Req("b", 9, maxTokens: 50);
        s.AddRequest(a);
        s.AddRequest(b);
        while (!a.IsFinished)
        {
            var o = s.Schedule();
            s.Update(o, Tokens(o));
        }
        Assert.Equal(RequestStatus.FinishedLength, a.Status);
        s.FinishRequests([b], RequestStatus.FinishedAborted);
        Assert.Equal(16, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Usage);
        Assert.False(s.HasUnfinishedRequests);
    }
}
