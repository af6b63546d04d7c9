namespace Pagoda.KvCache;

/// <summary>
/// A change to the prefix cache, as vLLM's KV cache events name them (vllm/distributed/kv_events.py): what an
/// external router needs to know which prompt prefixes this replica holds. The pool records them in order;
/// the engine takes them once per step and hands them to a publisher.
/// </summary>
public abstract record KvCacheEvent
{
    /// <summary>Where the blocks live, as vLLM's block pool says it for its own KV cache (MEDIUM_GPU).</summary>
    public const string MediumGpu = "GPU";
}

/// <summary>
/// Full blocks that entered the prefix cache, one run of a request's consecutive blocks: their chained hashes,
/// the hash of the block before the first (null when the run starts the sequence), and all their token ids.
/// </summary>
public sealed record BlockStored(
    IReadOnlyList<ulong> BlockHashes,
    ulong? ParentBlockHash,
    IReadOnlyList<int> TokenIds,
    int BlockSize,
    int? LoraId = null,
    string? Medium = KvCacheEvent.MediumGpu,
    string? LoraName = null) : KvCacheEvent;

/// <summary>Cached blocks whose hashes left the prefix cache (evicted for reuse, or never written).</summary>
public sealed record BlockRemoved(IReadOnlyList<ulong> BlockHashes, string? Medium = KvCacheEvent.MediumGpu) : KvCacheEvent;

/// <summary>The whole prefix cache was forgotten (a reset).</summary>
public sealed record AllBlocksCleared : KvCacheEvent;
