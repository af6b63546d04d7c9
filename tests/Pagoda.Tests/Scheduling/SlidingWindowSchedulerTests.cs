using Pagoda.KvCache;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.Tests.Scheduling;

/// <summary>
/// The scheduler over a sliding-window KV manager, without a model: blocks released as requests decode, preemption
/// and readmission with exact block ids, and a long mixed run checked against a stand-in of the paged KV pool.
/// </summary>
public class SlidingWindowSchedulerTests
{
    private static Request Req(string id, int[] prompt, int maxTokens) =>
        new(id, prompt, new SamplingParams(), maxTokens, 0, new HashSet<int>());

    // A fixed token per request and output index: a recomputed request sees the same tokens again.
    private static int NextToken(Request r) => r.RequestId.Sum(ch => ch) + 7 * r.NumOutputTokens;

    private static Dictionary<string, int[]> Sampled(SchedulerOutput o) =>
        o.Scheduled.Where(s => s.SamplesToken).ToDictionary(s => s.Request.RequestId, s => new[] { NextToken(s.Request) });

    private static string Tables(SchedulerOutput o) =>
        string.Join(" ", o.Scheduled.Select(s => $"{s.Request.RequestId}[{string.Join(",", s.BlockIds)}]"));

    [Fact]
    public void DecodesReleaseBlocksAndAPreemptedRequestComesBackWhenTheyAreEnough()
    {
        // 6 usable blocks of 2, window 4: three 3-token prompts fill the pool.
        var kv = new KvCacheManager(7, 2, enablePrefixCaching: false, slidingWindow: 4);
        var s = new Scheduler(new SchedulerConfig(100, 4, 100), kv);
        var (a, b, c) = (Req("a", [1, 2, 3], 8), Req("b", [4, 5, 6], 8), Req("c", [7, 8, 9], 8));
        s.AddRequest(a);
        s.AddRequest(b);
        s.AddRequest(c);
        string[] expected =
        [
            "a[1,2] b[3,4] c[5,6]",
            "a[1,2] b[3,4] c[5,6]",
            "a[1,2,6] b[3,4,5]", // a's token 4 needs a third block: c, the newest, gives way
            "a[0,2,6] b[0,4,5]", // queries at 5 read 2..5: the first blocks go, but c needs 3 blocks for its 5 tokens
            "a[0,2,6,1] b[0,4,5,3]",
            "a[0,0,6,1] b[0,0,5,3]",
            "a[0,0,6,1,2] b[0,0,5,3,4]",
            "a[0,0,0,1,2] b[0,0,0,3,4]", // a and b finish
            "c[6,5,2]", // c recomputes its 3 prompt and 2 output tokens
        ];
        for (int step = 0; step < expected.Length; step++)
        {
            var o = s.Schedule();
            Assert.Equal(expected[step], Tables(o));
            Assert.Equal(step == 2 ? new[] { c } : [], o.Preempted);
            s.Update(o, Sampled(o));
        }
        Assert.True(a.IsFinished && b.IsFinished);
        Assert.Equal(1, c.NumPreemptions);
        while (s.HasUnfinishedRequests)
        {
            var o = s.Schedule();
            s.Update(o, Sampled(o));
        }
        Assert.Equal(8, c.NumOutputTokens);
        Assert.Equal(6, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Usage);
    }

    /// <summary>
    /// The paged pool as attention sees it: each step writes its tokens' KV to their slots, then every query reads
    /// its window through its table. A position's KV stands for what a model computes there: a function of all the
    /// tokens up to it, so a cache hit from another request holds the same values.
    /// </summary>
    private sealed class PagedKvStandIn(int numBlocks, int blockSize, int window)
    {
        private readonly long[] _slots = new long[numBlocks * blockSize];

        public long Reads { get; private set; }

        public void Run(SchedulerOutput o)
        {
            foreach (var s in o.Scheduled)
            {
                for (int p = s.Request.NumComputedTokens; p < s.Request.NumComputedTokens + s.NumTokens; p++)
                    _slots[Slot(s, p)] = KvAt(s.Request, p);
            }
            foreach (var s in o.Scheduled)
            {
                for (int q = s.Request.NumComputedTokens; q < s.Request.NumComputedTokens + s.NumTokens; q++)
                {
                    for (int k = Math.Max(0, q - window + 1); k <= q; k++, Reads++)
                        Assert.True(_slots[Slot(s, k)] == KvAt(s.Request, k), $"{s.Request.RequestId}: query {q} reads a wrong key {k}");
                }
            }
        }

        // The slot of position p; the window never reaches the null block, whose slots nothing may write.
        private int Slot(ScheduledRequest s, int p)
        {
            int block = s.BlockIds[p / blockSize];
            Assert.True(block != 0, $"{s.Request.RequestId}: position {p} is in the null block");
            return block * blockSize + p % blockSize;
        }

        private static long KvAt(Request r, int p)
        {
            long h = 17;
            for (int i = 0; i <= p; i++)
                h = h * 1_000_003 + r.AllTokenIds[i];
            return h;
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EveryQueryReadsItsOwnWindowThroughHitsChunksAndPreemptions(bool prefixCaching)
    {
        // Window 6 over blocks of 4 (one request holds at most ceil((6 - 1 + 8) / 4) + 1 = 5 blocks), 7 usable
        // blocks, 8 tokens a step: prompts of up to 60 tokens (the pool holds 28) are chunked, and four running
        // requests outgrow the pool.
        const int blockSize = 4, window = 6, numBlocks = 8;
        var kv = new KvCacheManager(numBlocks, blockSize, prefixCaching, slidingWindow: window);
        var s = new Scheduler(new SchedulerConfig(8, 4, 200), kv);
        var pool = new PagedKvStandIn(numBlocks, blockSize, window);
        int[] shared = Enumerable.Range(300, 20).ToArray();
        var requests = new List<Request>();
        for (int i = 0; i < 12; i++)
        {
            int[] prompt = (i % 4) switch
            {
                0 => Enumerable.Range(1000, 60).ToArray(), // the same long prompt every time
                1 => [.. shared, .. Enumerable.Range(2000 + 10 * i, i)],
                2 => [.. shared],
                _ => Enumerable.Range(5000 + 100 * i, 3 + i).ToArray(),
            };
            requests.Add(Req($"r{i}", prompt, 6 + i % 5));
        }

        int steps = 0, next = 0;
        while (next < requests.Count || s.HasUnfinishedRequests)
        {
            // Two arrivals every three steps: later copies of a prompt find earlier ones' blocks cached.
            if (steps % 3 != 2)
            {
                for (int n = 0; n < 2 && next < requests.Count; n++)
                    s.AddRequest(requests[next++]);
            }
            var o = s.Schedule();
            pool.Run(o);
            s.Update(o, Sampled(o));
            Assert.True(++steps < 2000, "the run does not finish");
        }

        Assert.All(requests, r => Assert.Equal(6 + int.Parse(r.RequestId[1..]) % 5, r.NumOutputTokens));
        Assert.True(s.NumPreemptions > 0, $"{s.NumPreemptions} preemptions, {kv.PrefixCacheStats} in {steps} steps");
        Assert.True(!prefixCaching || kv.PrefixCacheStats.HitTokens > 0);
        Assert.True(pool.Reads > 1000);
        Assert.Equal(numBlocks - 1, kv.Pool.NumFreeBlocks);
        Assert.Equal(0, kv.Usage);
        Assert.Equal(0, kv.Pool[0].RefCount);
        Assert.Null(kv.Pool[0].Hash);
    }
}
