using System.Text.Json.Nodes;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// Prefix-cache hits, and outputs that do not depend on batch, chunking, cache hits or preemption. Exact
/// equality across batch shapes is a promise of batch-invariant mode only (the default CPU decode GEMV
/// reduces in another order than the prefill GEMM), so these engines run with BatchInvariant = true.
/// </summary>
public class PrefixCacheAndInvarianceTests
{
    private static readonly string SystemPrompt = string.Concat(Enumerable.Repeat("You are a helpful assistant who knows many old fortunes. ", 6));

    private static List<PromptInput> SharedPrefixPrompts(LLM llm) =>
        new[] { "Tell me a joke.", "Say something about cats.", "Give me a quote about work.", "Tell me something about love." }
            .Select(q => llm.RenderChat(new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = SystemPrompt },
                new JsonObject { ["role"] = "user", ["content"] = q })))
            .ToList();

    private static LLM Fortune(EngineArgs args) => new(args with { Model = TestPaths.Model("fortune-chat"), BatchInvariant = true });

    [Fact]
    public void SharedSystemPromptHitsTheCacheWithTheSameOutputsWhenBatchInvariant()
    {
        var greedy = new SamplingParams { Temperature = 0, MaxTokens = 24 };
        using var cached = Fortune(new EngineArgs());
        var prompts = SharedPrefixPrompts(cached);
        // One after the other, so later prompts find the earlier ones' blocks.
        var withCache = prompts.Select(p => cached.Generate([p], greedy)[0].Outputs[0].TokenIds).ToList();
        var stats = cached.Engine.Stats.PrefixCache;
        Assert.True(stats.HitRate > 0.5, $"hit rate {stats.HitRate}");

        using var uncached = Fortune(new EngineArgs { EnablePrefixCaching = false });
        var without = prompts.Select(p => uncached.Generate([p], greedy)[0].Outputs[0].TokenIds).ToList();
        Assert.Equal(0, uncached.Engine.Stats.PrefixCache.HitRate);
        Assert.Equal(without, withCache);
    }

    [Fact]
    public void BatchInvariantSeededSamplingIsIdenticalAloneOrInAnyBatch()
    {
        var p = new SamplingParams { Temperature = 0.9, TopP = 0.95, Seed = 11, MaxTokens = 20, IgnoreEos = true };
        using var alone = Fortune(new EngineArgs());
        var prompts = SharedPrefixPrompts(alone);
        var expected = prompts.Select(x => alone.Generate([x], p)[0].Outputs[0].TokenIds).ToList();

        // Everything at once with a tiny budget (chunked prefill), a small pool (preemption) and cache hits.
        using var busy = Fortune(new EngineArgs { MaxNumBatchedTokens = 24, NumKvBlocks = 24, BlockSize = 8, MaxModelLen = 192 });
        var filler = Enumerable.Range(0, 6).Select(i => (PromptInput)$"Filler prompt number {i} about the sea").ToList();
        var all = prompts.Concat(filler).ToList();
        var pars = prompts.Select(_ => p).Concat(filler.Select(_ => new SamplingParams { Temperature = 1, MaxTokens = 30, IgnoreEos = true })).ToList();
        var outputs = busy.Generate(all, pars);
        Assert.Equal(expected, outputs.Take(prompts.Count).Select(o => o.Outputs[0].TokenIds));
        Assert.True(busy.Engine.Stats.NumPreemptions > 0);
        Assert.True(busy.Engine.Stats.PrefixCache.HitTokens > 0);
    }
}
