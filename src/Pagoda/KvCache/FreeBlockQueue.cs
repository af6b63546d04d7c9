namespace Pagoda.KvCache;

/// <summary>
/// Free blocks as a doubly linked list threaded through the blocks themselves, in eviction order: the
/// head is evicted first. Freed blocks join the tail, so a cached block stays reusable as long as possible;
/// a cache hit takes a block out of the middle in O(1).
/// </summary>
public sealed class FreeBlockQueue
{
    private readonly KvCacheBlock _head = new(-1); // sentinels: no null checks on the hot path
    private readonly KvCacheBlock _tail = new(-1);

    /// <summary>Queues <paramref name="blocks"/> in the given order.</summary>
    public FreeBlockQueue(IEnumerable<KvCacheBlock> blocks)
    {
        _head.NextFree = _tail;
        _tail.PrevFree = _head;
        foreach (var b in blocks)
            Append(b);
    }

    /// <summary>Number of free blocks.</summary>
    public int Count { get; private set; }

    /// <summary>Takes the block at the head (the next to evict).</summary>
    public KvCacheBlock PopLeft()
    {
        var first = _head.NextFree!;
        if (first == _tail)
            throw new InvalidOperationException("No free blocks.");
        Remove(first);
        return first;
    }

    /// <summary>Unlinks a block from anywhere in the queue.</summary>
    public void Remove(KvCacheBlock block)
    {
        if (block.PrevFree is null || block.NextFree is null)
            throw new InvalidOperationException($"{block} is not in the free queue.");
        block.PrevFree.NextFree = block.NextFree;
        block.NextFree.PrevFree = block.PrevFree;
        block.PrevFree = block.NextFree = null;
        Count--;
    }

    /// <summary>Adds a block at the tail (evicted last).</summary>
    public void Append(KvCacheBlock block)
    {
        var last = _tail.PrevFree!;
        last.NextFree = block;
        block.PrevFree = last;
        block.NextFree = _tail;
        _tail.PrevFree = block;
        Count++;
    }

    /// <summary>The free blocks from head to tail (for tests and diagnostics).</summary>
    public IEnumerable<KvCacheBlock> Enumerate()
    {
        for (var b = _head.NextFree!; b != _tail; b = b.NextFree!)
            yield return b;
    }
}
