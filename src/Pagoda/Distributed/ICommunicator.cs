using Pagoda.Backends;

namespace Pagoda.Distributed;

/// <summary>
/// The collectives a tensor-parallel model calls inside its forward, in the same order on every rank (vLLM's
/// GroupCoordinator): the row-parallel layers' all-reduce and the vocabulary-parallel head's gather.
/// </summary>
public interface ICommunicator
{
    /// <summary>Where this process stands in the group.</summary>
    TensorParallelRank Rank { get; }

    /// <summary>x [rows, cols] ← the sum of every rank's x, added in rank order so every rank holds the same bits.</summary>
    void AllReduce(Tensor x);

    /// <summary>
    /// Rank 0's <paramref name="dst"/> [rows, Σ widths] ← every rank's <paramref name="part"/> [rows, width_r] side by
    /// side in rank order (the vocabulary-parallel head's logits, left on rank 0's backend for its sampling); the other
    /// ranks pass null.
    /// </summary>
    void GatherColumns(Tensor part, Tensor? dst);
}
