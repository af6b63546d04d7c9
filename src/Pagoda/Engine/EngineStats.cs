using Pagoda.KvCache;

namespace Pagoda.Engine;

/// <summary>A snapshot of the engine's load (what vLLM's stat logger and /metrics report).</summary>
public sealed record EngineStats(
    int NumRunning,
    int NumWaiting,
    double KvCacheUsage,
    PrefixCacheStats PrefixCache,
    long NumPreemptions,
    long PromptTokens,
    long GenerationTokens);

/// <summary>The KV pool's size, as reported at start-up.</summary>
/// <param name="NumBlocks">Blocks in the pool.</param>
/// <param name="BlockSize">Tokens per block.</param>
/// <param name="MaxModelLen">Longest prompt + output.</param>
public sealed record KvCacheInfo(int NumBlocks, int BlockSize, int MaxModelLen)
{
    /// <summary>Tokens the pool holds.</summary>
    public long NumTokens => (long)NumBlocks * BlockSize;

    /// <summary>How many requests of the full context length fit at once.</summary>
    public double MaxConcurrency => (double)NumTokens / MaxModelLen;

    /// <summary>vLLM's start-up line.</summary>
    public override string ToString() =>
        $"KV cache size: {NumTokens:N0} tokens, maximum concurrency for {MaxModelLen:N0} tokens per request: {MaxConcurrency:F2}x";
}
