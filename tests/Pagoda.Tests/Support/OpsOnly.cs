using Pagoda.Backends;

namespace Pagoda.Tests.Support;

/// <summary>
/// A backend seen through <see cref="IBackend"/> alone: none of its optional capabilities (stacked projections,
/// fused norms, device sampling), so a model built on it takes the plain op-by-op path for comparison. Test backends
/// that add one capability derive from it.
/// </summary>
public class OpsOnly(IBackend inner) : IBackend
{
    public string Name => inner.Name;
    public Tensor LoadWeight(HostWeight weight) => inner.LoadWeight(weight);
    public Tensor QuantizeInt8(Tensor weight) => inner.QuantizeInt8(weight);
    public Tensor Empty(params int[] shape) => inner.Empty(shape);
    public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth) =>
        inner.AllocateKvCache(numLayers, numBlocks, blockSize, kvWidth);
    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst) => inner.Embedding(table, ids, dst);
    public void EmbeddingShard(Tensor table, ReadOnlySpan<int> ids, int firstId, Tensor dst) => inner.EmbeddingShard(table, ids, firstId, dst);
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst) => inner.Linear(x, weight, bias, dst);
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst) => inner.RmsNorm(x, weight, eps, dst);
    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst) => inner.LayerNorm(x, weight, bias, eps, dst);
    public void Add(Tensor a, Tensor b, Tensor dst) => inner.Add(a, b, dst);
    public void SiluMul(Tensor gate, Tensor up, Tensor dst) => inner.SiluMul(gate, up, dst);
    public void GeluTanhMul(Tensor gate, Tensor up, Tensor dst) => inner.GeluTanhMul(gate, up, dst);
    public void Scale(Tensor x, float factor) => inner.Scale(x, factor);
    public void SoftCap(Tensor x, float cap) => inner.SoftCap(x, cap);
    public void Relu(Tensor x) => inner.Relu(x);
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope) => inner.Rope(x, headDim, positions, rope);
    public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping) =>
        inner.StoreKv(k, v, cache, layer, slotMapping);
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst) => inner.PagedAttention(q, cache, layer, batch, spec, dst);
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst) => inner.GatherRows(x, rows, dst);
    public void CopyToHost(Tensor src, Span<float> dst) => inner.CopyToHost(src, dst);
    public void Dispose() => inner.Dispose();
}
