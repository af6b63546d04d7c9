using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// Every golden prompt of a model submitted as one batch reproduces transformers' greedy ids: plain
/// continuous batching, forced chunked prefill, and a pool so small that requests are preempted.
/// </summary>
public class BatchGoldenTests
{
    public static IEnumerable<object[]> Models() => BatchGoldenModels.All.Select(m => new object[] { m });

    private static void RunAll(string model, EngineArgs args, Action<LLM>? check = null)
    {
        var cases = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1])).ToList();
        using var llm = new LLM(args with { Model = TestPaths.Model(model) });
        var outputs = llm.Generate(
            cases.Select(c => PromptInput.FromTokenIds(c.PromptIds)).ToList(),
            cases.Select(c => new SamplingParams { Temperature = 0, MaxTokens = c.OutputIds.Length, StopTokenIds = [8192, 8194], Logprobs = 1 }).ToList());
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.True(cases[i].OutputIds.SequenceEqual(outputs[i].Outputs[0].TokenIds), $"{cases[i]}: ids differ");
            for (int s = 0; s < cases[i].Steps.Length; s++)
                Assert.True(Math.Abs(cases[i].Steps[s].Logprob - outputs[i].Outputs[0].Logprobs![s].Logprob) <= 1e-4, $"{cases[i]} step {s}");
        }
        check?.Invoke(llm);
        Assert.Equal(0, llm.Engine.KvCacheManager.Usage);
        Assert.Equal(llm.Engine.KvCacheManager.Pool.NumUsableBlocks, llm.Engine.KvCacheManager.Pool.NumFreeBlocks);
    }

    [Theory, MemberData(nameof(Models))]
    public void AllPromptsInOneBatch(string model) => RunAll(model, new EngineArgs());

    [Theory, MemberData(nameof(Models))]
    public void ChunkedPrefillWith32TokenBudget(string model) => RunAll(model, new EngineArgs { MaxNumBatchedTokens = 32 });

    [Theory, MemberData(nameof(Models))]
    public void TinyPoolForcesPreemption(string model) =>
        // A 32-token budget keeps one request's window (tiny-mistral: 48 keys) within the 11 usable blocks besides the null block.
        RunAll(model, new EngineArgs { NumKvBlocks = 12, BlockSize = 16, MaxModelLen = 192, MaxNumBatchedTokens = 32 },
            llm => Assert.True(llm.Engine.Stats.NumPreemptions > 0, "expected preemptions with a 12-block pool"));

    [Fact]
    public void PreemptionChunkingAndNoPrefixCacheTogether() =>
        RunAll("fortune-chat", new EngineArgs { NumKvBlocks = 48, BlockSize = 4, MaxModelLen = 192, MaxNumBatchedTokens = 16, EnablePrefixCaching = false },
            llm => Assert.True(llm.Engine.Stats.NumPreemptions > 0));
}

/// <summary>The fixture models with golden outputs from transformers.</summary>
public static class BatchGoldenModels
{
    public static readonly string[] All =
    [
        "fortune-chat", "tiny-llama", "tiny-qwen3", "tiny-opt", "tiny-mistral", "tiny-phi3", "tiny-qwen2-yarn", "tiny-gemma2", "tiny-gemma3",
        "tiny-qwen3-moe", "tiny-mixtral", "tiny-gpt-oss",
    ];
}
