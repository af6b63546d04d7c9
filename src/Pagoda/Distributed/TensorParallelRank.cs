namespace Pagoda.Distributed;

/// <summary>
/// One rank's place in a tensor-parallel group and the slices it owns, Megatron-style: attention heads and the
/// MLP's intermediate columns split evenly, KV heads split (or replicated when there are fewer than ranks), the
/// vocabulary in contiguous ranges (the last one shorter when it does not divide).
/// </summary>
public sealed record TensorParallelRank(int Rank, int Size)
{
    /// <summary>The whole model on one rank.</summary>
    public static TensorParallelRank Single { get; } = new(0, 1);

    /// <summary>More than one rank.</summary>
    public bool IsParallel => Size > 1;

    /// <summary>This rank's even share of <paramref name="total"/> items (heads, intermediate columns).</summary>
    public (int First, int Count) Even(int total, string what)
    {
        if (total % Size != 0)
            throw new ArgumentException($"tensor parallelism: {what} ({total}) is not divisible by --tensor-parallel-size {Size}.");
        int count = total / Size;
        return (Rank * count, count);
    }

    /// <summary>
    /// This rank's KV heads: an even share, or with fewer KV heads than ranks the one head its query heads read
    /// (each KV head replicated on Size / numKvHeads ranks, as vLLM does).
    /// </summary>
    public (int First, int Count) KvHeads(int numKvHeads)
    {
        if (numKvHeads >= Size)
            return Even(numKvHeads, "num_key_value_heads");
        if (Size % numKvHeads != 0)
            throw new ArgumentException($"tensor parallelism: --tensor-parallel-size {Size} is not a multiple of num_key_value_heads ({numKvHeads}).");
        return (Rank / (Size / numKvHeads), 1);
    }

    /// <summary>This rank's range of vocabulary ids (its rows of the LM head).</summary>
    public (int First, int Count) Vocab(int vocabSize) => VocabRanges(vocabSize)[Rank];

    /// <summary>Every rank's range of vocabulary ids, in rank order.</summary>
    public (int First, int Count)[] VocabRanges(int vocabSize)
    {
        int per = (vocabSize + Size - 1) / Size;
        return [.. Enumerable.Range(0, Size).Select(r => (Math.Min(r * per, vocabSize), Math.Clamp(vocabSize - r * per, 0, per)))];
    }
}
