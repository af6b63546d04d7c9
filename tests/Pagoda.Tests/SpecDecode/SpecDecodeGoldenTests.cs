using Pagoda.SpecDecode;
using Pagoda.Tests.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.SpecDecode;

/// <summary>
/// Greedy output with n-gram speculation is transformers' golden output, token for token with logprobs within 1e-4,
/// for every golden prompt of every fixture model: in one batch, under a 32-token budget that cuts drafts off, and in a
/// pool so small that requests are preempted. Lookups of one token propose often, and mostly wrongly, so both
/// acceptance and rejection run.
/// </summary>
public class SpecDecodeGoldenTests
{
    public static IEnumerable<object[]> Models() => BatchGoldenModels.All.Select(m => new object[] { m });

    internal static readonly SpeculativeConfig Eager = new() { Method = "ngram", NumSpeculativeTokens = 4, PromptLookupMin = 1, PromptLookupMax = 3, AdaptiveLengths = false };

    private static void RunAll(string model, EngineArgs args, Action<LLM>? check = null)
    {
        var cases = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1])).ToList();
        using var llm = new LLM(args with { Model = TestPaths.Model(model), SpeculativeConfig = Eager });
        var outputs = llm.Generate(
            cases.Select(c => PromptInput.FromTokenIds(c.PromptIds)).ToList(),
            cases.Select(c => new SamplingParams { Temperature = 0, MaxTokens = c.OutputIds.Length, StopTokenIds = [8192, 8194], Logprobs = 1 }).ToList());
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.True(cases[i].OutputIds.SequenceEqual(outputs[i].Outputs[0].TokenIds), $"{cases[i]}: ids differ");
            for (int s = 0; s < cases[i].Steps.Length; s++)
                Assert.True(Math.Abs(cases[i].Steps[s].Logprob - outputs[i].Outputs[0].Logprobs![s].Logprob) <= 1e-4, $"{cases[i]} step {s}");
        }
        var stats = llm.Engine.SpecDecodingStats!;
        Assert.True(stats.NumDrafts > 0, "no drafts were verified");
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
        RunAll(model, new EngineArgs { NumKvBlocks = 12, BlockSize = 16, MaxModelLen = 192, MaxNumBatchedTokens = 32 },
            llm => Assert.True(llm.Engine.Stats.NumPreemptions > 0, "expected preemptions with a 12-block pool"));
}
