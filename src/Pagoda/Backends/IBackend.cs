namespace Pagoda.Backends;

/// <summary>
/// The small op set models are written against. Activations are float32; weights keep their stored
/// dtype and are widened inside the kernels. Shapes are given as [rows, cols] with cols the last dim.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name (cpu, cuda).</summary>
    string Name { get; }

    /// <summary>Makes a stored weight usable by kernels (CPU: a view on the mapping; GPU: an upload).</summary>
    Tensor LoadWeight(HostWeight weight);

    /// <summary>
    /// Weight-only int8 copy of a [out, in] Linear weight (per output channel symmetric, made at load
    /// time), usable wherever the original is passed to <see cref="Linear"/>.
    /// </summary>
    Tensor QuantizeInt8(Tensor weight) => throw new NotSupportedException($"the {Name} backend has no int8 weights");

    /// <summary>A float32 activation buffer, zeroed.</summary>
    Tensor Empty(params int[] shape);

    /// <summary>Allocates the paged KV pool.</summary>
    PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth);

    /// <summary>dst[i] = table[ids[i]] — table [vocab, hidden], dst [n, hidden].</summary>
    void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst);

    /// <summary>
    /// A vocabulary-parallel shard's lookup: dst[i] = table[ids[i] - firstId] for ids among the shard's rows, a zero row
    /// for every other id — table [shard rows, hidden], dst [n, hidden]; the ranks' rows are then summed.
    /// </summary>
    void EmbeddingShard(Tensor table, ReadOnlySpan<int> ids, int firstId, Tensor dst) =>
        throw new NotSupportedException($"the {Name} backend has no vocabulary-parallel embedding");

    /// <summary>dst = x · weightᵀ + bias — x [n, in], weight [out, in], bias [out], dst [n, out].</summary>
    void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst);

    /// <summary>RMSNorm over each contiguous group of weight.Cols elements of x (rows or heads).</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst);

    /// <summary>LayerNorm over each row — x, dst [n, hidden].</summary>
    void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst);

    /// <summary>dst = a + b, elementwise (dst may alias a).</summary>
    void Add(Tensor a, Tensor b, Tensor dst);

    /// <summary>dst = silu(gate) * up — all [n, intermediate].</summary>
    void SiluMul(Tensor gate, Tensor up, Tensor dst);

    /// <summary>dst = gelu_tanh(gate) * up, GELU's tanh approximation (Gemma's GeGLU) — all [n, intermediate].</summary>
    void GeluTanhMul(Tensor gate, Tensor up, Tensor dst);

    /// <summary>x = x * factor in place, elementwise (Gemma's embedding normalizer).</summary>
    void Scale(Tensor x, float factor);

    /// <summary>x = cap · tanh(x / cap) in place, elementwise (Gemma 2's final logit soft-capping).</summary>
    void SoftCap(Tensor x, float cap);

    /// <summary>x = max(x, 0) in place.</summary>
    void Relu(Tensor x);

    /// <summary>
    /// Rotates x [n, heads * headDim] in place, NeoX style: in each head element i pairs with i + rotaryDim/2
    /// (rotaryDim = headDim unless the rotary is partial); cos and sin are multiplied by the attention factor.
    /// </summary>
    void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope);

    /// <summary>Writes k, v [n, kvWidth] into the layer's pool at slotMapping[i].</summary>
    void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping);

    /// <summary>
    /// Causal attention of q [n, heads * headDim] over each sequence's cached keys and values (read via
    /// its block table), written to dst [n, heads * headDim]; <paramref name="spec"/> says how scores are
    /// scaled, capped, windowed and normalised.
    /// </summary>
    void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst);

    /// <summary>dst[i] = x[rows[i]] — picks the rows whose logits are needed.</summary>
    void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst);

    /// <summary>Copies a float32 tensor to host memory.</summary>
    void CopyToHost(Tensor src, Span<float> dst);
}
