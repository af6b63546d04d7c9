using Pagoda.Requests;

namespace Pagoda.KvCache;

/// <summary>
/// One block of the paged pool: its id, how many requests use it, the hash of its tokens once it is
/// full (prefix cache key) and its links in the free queue (intrusive, so removal is O(1)).
/// </summary>
public sealed class KvCacheBlock(int blockId)
{
    /// <summary>Index of the block in the KV tensors.</summary>
    public int BlockId { get; } = blockId;

    /// <summary>Requests holding this block; 0 means it sits in the free queue.</summary>
    public int RefCount { get; internal set; }

    /// <summary>
    /// vLLM's null block: the placeholder a sliding-window request's table keeps where the window slid past, so
    /// that block b still holds positions b × block size onwards. The pool never hands it out nor frees it.
    /// </summary>
    public bool IsNull { get; internal init; }

    /// <summary>Set when the block is full and registered in the prefix cache.</summary>
    public BlockHash? Hash { get; internal set; }

    internal KvCacheBlock? PrevFree { get; set; }
    internal KvCacheBlock? NextFree { get; set; }

    /// <inheritdoc />
    public override string ToString() => IsNull ? $"Block({BlockId}, null)" : $"Block({BlockId}, ref={RefCount}{(Hash is null ? "" : ", cached")})";
}
