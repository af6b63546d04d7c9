using Pagoda.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// The start-up check that one request always fits the pool (or preemption could never make room): its whole
/// context without a sliding window; with one, only what its window and one step cover, as vLLM's
/// SlidingWindowSpec.max_memory_usage_bytes counts it, besides the null block.
/// </summary>
public class KvCacheSizingTests
{
    private static KvCacheInfo Size(int numBlocks, int maxModelLen, int slidingWindow) =>
        LLMEngine.SizeKvCache(new EngineArgs { NumKvBlocks = numBlocks, BlockSize = 16, MaxNumBatchedTokens = 64 },
            kvWidth: 64, numLayers: 2, maxModelLen, deviceBlocks: null, slidingWindow);

    [Fact]
    public void WithoutAWindowTheWholeContextMustFit()
    {
        var info = Size(7, 100, 0);
        Assert.Equal(112, info.NumTokens);
        Assert.Equal(7, info.MaxBlocksPerRequest);
        Assert.Equal(1.12, info.MaxConcurrency, 6);
        Assert.Throws<ArgumentException>(() => Size(6, 100, 0));
    }

    [Fact]
    public void WithAWindowTheWindowAndOneStepMustFitBesidesTheNullBlock()
    {
        // 31 earlier keys + 64 tokens a step = 95 tokens: 6 blocks, one more for where they start in a block.
        var info = Size(8, 4096, 32);
        Assert.Equal(7, info.MaxBlocksPerRequest);
        Assert.Equal(7 * 16, info.NumTokens); // block 0 is the null block
        Assert.Equal(1.0, info.MaxConcurrency, 6);
        var error = Assert.Throws<ArgumentException>(() => Size(7, 4096, 32));
        Assert.Contains("6 usable blocks", error.Message);
    }

    [Fact]
    public void AWindowNeverAsksForMoreThanTheContext()
    {
        // min(31 + 64, 40) = 40 tokens: 3 blocks, plus one.
        Assert.Equal(4, Size(5, 40, 32).MaxBlocksPerRequest);
        Assert.Throws<ArgumentException>(() => Size(4, 40, 32));
    }
    // tiny-mistral slides every layer with a window of 48: under a max-model-len of at most 48 no key ever leaves a
    // window, so the KV manager keeps every block (and disaggregated prefill, which needs them, is allowed).
    [Theory]
    [InlineData(48, 0)]
    [InlineData(49, 48)]
    [InlineData(256, 48)]
    public void AWindowAsLongAsTheContextIsFullAttentionToTheKvManager(int maxModelLen, int expected)
    {
        var kv = new Pagoda.KvTransfer.KvTransferConfig { KvRole = "kv_producer", KvPort = 0 };
        var args = new EngineArgs { Model = TestPaths.Model("tiny-mistral"), NumKvBlocks = 64, MaxModelLen = maxModelLen, KvTransferConfig = kv };
        if (expected > 0)
        {
            Assert.Contains("every layer slides", Assert.Throws<ArgumentException>(() => new LLM(args)).Message);
            args = args with { KvTransferConfig = null };
        }
        using var llm = new LLM(args);
        Assert.Equal(expected, llm.Engine.KvCacheInfo.SlidingWindow);
        Assert.Equal(8, llm.Generate([PromptInput.FromTokenIds([.. Enumerable.Range(5, 30)])], new SamplingParams { Temperature = 0, MaxTokens = 8, IgnoreEos = true })[0]
            .Outputs[0].TokenIds.Count);
    }
}
