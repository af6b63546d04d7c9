using Pagoda.Engine;
using Pagoda.Execution;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// A step that fails must not leave prefix-cache entries for blocks whose KV it never wrote: a later request
/// with the same prefix would attend over garbage. Exact block ids on a 32-block pool of 16-token blocks.
/// </summary>
public class FailedStepPrefixCacheTests
{
    // 70 prompt tokens: blocks 0-3 full, block 4 partial.
    private static readonly int[] Prompt = Enumerable.Range(0, 70).Select(i => 100 + (i * 37) % 5000).ToArray();
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 8, IgnoreEos = true };

    private static LLMEngine Engine(FaultHook? hook = null, int maxNumBatchedTokens = 2048) => new(new EngineArgs
    {
        Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 32, BlockSize = 16, MaxModelLen = 256,
        MaxNumBatchedTokens = maxNumBatchedTokens, GenerationConfig = "vllm", FaultHook = hook,
    });

    private static List<int> Run(LLMEngine engine, string id, Action? afterFirstStep = null)
    {
        engine.AddRequest(id, new PromptInput { TokenIds = Prompt }, Greedy);
        var tokens = new List<int>();
        bool first = true;
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step())
            {
                if (o.Finished)
                    tokens = o.Outputs[0].TokenIds.ToList();
            }
            if (first)
                afterFirstStep?.Invoke();
            first = false;
        }
        return tokens;
    }

    private static List<int> Fresh()
    {
        using var engine = Engine();
        var tokens = Run(engine, "fresh");
        Assert.Equal(Greedy.MaxTokens, tokens.Count);
        return tokens;
    }

    private static void StepUntilFailed(LLMEngine engine, string id)
    {
        for (int i = 0; i < 10 && engine.HasUnfinishedRequests; i++)
            engine.Step();
        Assert.Equal(id, Assert.Single(engine.TakeFailures()).RequestId);
        Assert.Equal(0, engine.KvCacheManager.Usage);
    }

    [Fact]
    public void AStepFaultLeavesNoneOfItsBlocksCached()
    {
        using var engine = Engine((site, id) =>
        {
            if (site == FaultSite.Step && id == "bad")
                throw new InvalidOperationException("injected");
        });
        engine.AddRequest("bad", new PromptInput { TokenIds = Prompt }, Greedy);
        StepUntilFailed(engine, "bad");
        // "bad" held blocks 0-4 and never wrote them: none may be found by a lookup.
        Assert.All(Enumerable.Range(0, 5), b => Assert.Null(engine.KvCacheManager.Pool[b].Hash));

        IReadOnlyList<int> blocks = [];
        var tokens = Run(engine, "good", () => blocks = engine.KvCacheManager.GetBlockIds("good"));
        Assert.Empty(engine.TakeFailures());
        // Freed last block first, "bad"'s blocks sit at the tail of the free queue: "good" gets fresh ones.
        Assert.Equal([5, 6, 7, 8, 9], blocks);
        Assert.Equal(0, engine.Stats.PrefixCache.HitTokens);
        Assert.Equal(Fresh(), tokens);
    }

    [Fact]
    public void AFailedForwardUncachesOnlyTheBlocksOfThatStep()
    {
        bool armed = false;
        // A 32-token budget prefills in chunks: step 1 writes blocks 0-1, step 2's forward throws after
        // blocks 2-3 were registered for it.
        using var engine = Engine((site, id) =>
        {
            if (site == FaultSite.Forward && armed)
                throw new InvalidOperationException("injected");
        }, maxNumBatchedTokens: 32);
        engine.AddRequest("bad", new PromptInput { TokenIds = Prompt }, Greedy);
        engine.Step();
        Assert.Equal([0, 1], engine.KvCacheManager.GetBlockIds("bad"));
        armed = true;
        StepUntilFailed(engine, "bad");
        armed = false;
        Assert.NotNull(engine.KvCacheManager.Pool[0].Hash);
        Assert.NotNull(engine.KvCacheManager.Pool[1].Hash);
        Assert.Null(engine.KvCacheManager.Pool[2].Hash);
        Assert.Null(engine.KvCacheManager.Pool[3].Hash);

        IReadOnlyList<int> blocks = [];
        var tokens = Run(engine, "good", () => blocks = engine.KvCacheManager.GetBlockIds("good"));
        Assert.Empty(engine.TakeFailures());
        // Hits on the two blocks step 1 wrote; the rest comes from the head of the free queue.
        Assert.Equal(32, engine.Stats.PrefixCache.HitTokens);
        Assert.Equal([0, 1, 4, 5], blocks);
        Assert.Equal(Fresh(), tokens);
    }

    [Fact]
    public void ARequestSharingBlocksOfAFailedRequestInTheSameStepIsRecomputed()
    {
        using var engine = Engine((site, id) =>
        {
            if (site == FaultSite.Step && id == "bad")
                throw new InvalidOperationException("injected");
        });
        // Admitted in one step, "twin" hits the 4 full blocks "bad" registered for that very step.
        engine.AddRequest("bad", new PromptInput { TokenIds = Prompt }, Greedy);
        var tokens = Run(engine, "twin");
        Assert.Equal("bad", Assert.Single(engine.TakeFailures()).RequestId);
        Assert.Equal(Fresh(), tokens);
    }
}
