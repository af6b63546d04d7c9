using Pagoda.Engine;

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
}
