using Pagoda.Execution;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Decode attention fetches the output projection's weight while it computes (see <see cref="Attention"/>):
/// on this backend attention is compute-bound, so the bus would otherwise idle while the o_proj GEMV right
/// after it starts from a cold stream.
/// </summary>
public sealed partial class CpuBackend : IWeightPrefetchOps
{
    /// <summary>On unless PAGODA_CPU_PREFETCH=0 (which ignores the hint, for comparisons).</summary>
    public bool PrefetchesWeights { get; init; } = Environment.GetEnvironmentVariable("PAGODA_CPU_PREFETCH") != "0";

    /// <inheritdoc />
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, int numHeads, int numKvHeads,
        int headDim, float scale, Tensor dst, Tensor nextWeight) =>
        _attention.Paged((CpuTensor)q, cache, layer, batch, numHeads, numKvHeads, headDim, scale, (CpuTensor)dst,
            PrefetchesWeights ? (CpuTensor)nextWeight : null);
}
