using Pagoda.KvCache;
using Pagoda.SpecDecode;

namespace Pagoda.Engine;

/// <summary>A snapshot of the engine's load (what vLLM's stat logger and /metrics report).</summary>
public sealed record EngineStats(
    int NumRunning,
    int NumWaiting,
    double KvCacheUsage,
    PrefixCacheStats PrefixCache,
    long NumPreemptions,
    long PromptTokens,
    long GenerationTokens)
{
    /// <summary>
    /// Sequences that have sampled their first token: prefills finished (a preempted sequence's recompute does not count
    /// again). Benchmarks time a batch's prefill by it; generated tokens include the decodes of sequences that finished first.
    /// </summary>
    public long NumFirstTokens { get; init; }

    /// <summary>Speculative decoding's counters (null without `--speculative-config`).</summary>
    public SpecDecodingStats? SpecDecoding { get; init; }
}

/// <summary>The KV pool's size, as reported at start-up.</summary>
/// <param name="NumBlocks">Blocks in the pool.</param>
/// <param name="BlockSize">Tokens per block.</param>
/// <param name="MaxModelLen">Longest prompt + output.</param>
public sealed record KvCacheInfo(int NumBlocks, int BlockSize, int MaxModelLen)
{
    /// <summary>
    /// Keys a query sees when every layer of the model slides (0: all): a request then holds only the blocks its
    /// window and one step's tokens cover, and block 0 is the null block, which holds no KV.
    /// </summary>
    public int SlidingWindow { get; init; }

    /// <summary>Tokens one step may compute (with a window, it bounds the blocks a request holds).</summary>
    public int MaxNumBatchedTokens { get; init; }

    /// <summary>Tokens the pool holds.</summary>
    public long NumTokens => (long)(SlidingWindow > 0 ? NumBlocks - 1 : NumBlocks) * BlockSize;

    /// <summary>
    /// The most blocks one request holds at once (vLLM's max_memory_usage_bytes per block): its whole context
    /// without a window; with one, the window - 1 keys the first query of a step reads plus the step's tokens,
    /// one more block for where they start in a block.
    /// </summary>
    public int MaxBlocksPerRequest => SlidingWindow > 0
        ? (int)((Math.Min((long)SlidingWindow - 1 + MaxNumBatchedTokens, MaxModelLen) + BlockSize - 1) / BlockSize) + 1
        : (MaxModelLen + BlockSize - 1) / BlockSize;

    /// <summary>How many requests of the full context length fit at once.</summary>
    public double MaxConcurrency => SlidingWindow > 0 ? (double)NumTokens / BlockSize / MaxBlocksPerRequest : (double)NumTokens / MaxModelLen;

    /// <summary>vLLM's start-up line.</summary>
    public override string ToString() =>
        $"KV cache size: {NumTokens:N0} tokens, maximum concurrency for {MaxModelLen:N0} tokens per request: {MaxConcurrency:F2}x";
}
