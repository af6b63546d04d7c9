namespace Pagoda.Backends;

/// <summary>
/// Optional backend capability: projections that read the same input run as one GEMM over weights
/// stacked at load time (q/k/v, gate/up), with one kernel consuming each stacked output.
/// </summary>
public interface IMergedProjectionOps
{
    /// <summary>
    /// Stacks weights [rᵢ, cols] (or biases [rᵢ]) along rows into one tensor the backend owns; the parts
    /// are released and must not be used afterwards.
    /// </summary>
    Tensor StackRows(params Tensor[] parts);

    /// <summary>
    /// From qkv [n, (numHeads + 2·numKvHeads)·headDim] (q, then k, then v columns) plus the stacked bias:
    /// writes q rotated (NeoX RoPE) to <paramref name="q"/> [n, numHeads·headDim], and k rotated and v to
    /// the layer's pool at slotMapping[i].
    /// </summary>
    void QkvRopeStore(Tensor qkv, Tensor? bias, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<int> positions,
        RotaryParams rope, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping, Tensor q);

    /// <summary>dst [n, ff] = silu(gateUp[:, :ff]) · gateUp[:, ff:] for gateUp [n, 2·ff].</summary>
    void SiluMulStacked(Tensor gateUp, Tensor dst);
}
