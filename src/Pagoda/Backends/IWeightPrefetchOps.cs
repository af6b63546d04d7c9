using Pagoda.Execution;

namespace Pagoda.Backends;

/// <summary>
/// Optional backend capability: an op that leaves memory bandwidth idle (decode attention is compute-bound
/// on CPU) pulls the weight of the Linear that follows it toward the cores meanwhile, so that Linear starts
/// from cache instead of a cold stream. Results are exactly those of the plain op.
/// </summary>
public interface IWeightPrefetchOps
{
    /// <summary>
    /// <see cref="IBackend.PagedAttention"/>, prefetching <paramref name="nextWeight"/> (the weight the next
    /// Linear reads) while it runs.
    /// </summary>
    void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, int numHeads, int numKvHeads,
        int headDim, float scale, Tensor dst, Tensor nextWeight);
}
