using Pagoda.Backends;
using Pagoda.Distributed;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// Gemma 2 and Gemma 3 (text): a Llama-like decoder with four RMSNorms a layer (before and after attention, before
/// and after the MLP, each multiplying by 1 + w), embeddings scaled by √hidden, a GELU-tanh gated MLP, scores
/// scaled by query_pre_attn_scalar^-½, and layers alternating between sliding-window (local) and full (global)
/// attention. Gemma 2 soft-caps attention scores and the final logits; Gemma 3 instead RMS-normalises q and k per
/// head and gives local and global layers different RoPE bases.
/// </summary>
public sealed class GemmaModel : IModel
{
    private sealed record Layer(
        Tensor InputNorm, Tensor Q, Tensor K, Tensor V, Tensor O, Tensor? QNorm, Tensor? KNorm, Tensor PostAttentionNorm,
        Tensor PreFeedforwardNorm, Tensor Gate, Tensor Up, Tensor Down, Tensor PostFeedforwardNorm,
        AttentionSpec Attention, RotaryParams Rope);

    private readonly IBackend _b;
    private readonly Tensor _embed, _norm, _lmHead;
    private readonly LmHead _head;
    private readonly Layer[] _layers;
    private readonly float _embedScale;
    private readonly HostMadeWeights _madeWeights = new();
    private readonly Shards _shards;

    /// <summary>
    /// Binds every weight, checking names and shapes against the config (with a <paramref name="comm"/> of several
    /// ranks, this rank's tensor-parallel shard: see <see cref="Shards"/>).
    /// </summary>
    public GemmaModel(ModelConfig config, WeightStore weights, IBackend backend, ICommunicator? comm = null)
    {
        var g = config.Gemma ?? throw new ArgumentException($"{config.Architecture} config has no Gemma fields", nameof(config));
        float finalCap = (float)g.FinalLogitSoftcapping;
        Config = config;
        _b = backend;
        var sh = _shards = new Shards(config, weights, comm);
        int h = config.HiddenSize, q = config.NumHeads * config.HeadDim, kv = config.NumKvHeads * config.HeadDim, ff = config.IntermediateSize;
        Tensor L(HostWeight w) => backend.LoadWeight(w);
        // Gemma's RMSNorm multiplies by (1 + w) in float32: made once here, so the backend's RmsNorm applies it as is.
        Tensor Norm(string name, int size)
        {
            var w = HostMadeWeights.Widen(weights.View(name, size));
            for (int i = 0; i < w.Length; i++)
                w[i] = 1f + w[i];
            return _madeWeights.Load(backend, name, w, size);
        }

        _embed = L(sh.Embedding("model.embed_tokens.weight", config.VocabSize, h));
        _norm = Norm("model.norm.weight", h);
        _lmHead = config.TieWordEmbeddings ? _embed : L(sh.Head("lm_head.weight", config.VocabSize, h));
        _head = new LmHead(backend, _lmHead, finalCap, sh.Comm, config.VocabSize);
        // transformers casts the normalizer √hidden to the activations' dtype (float32 here) before multiplying.
        _embedScale = (float)Math.Sqrt(h);

        // Scores are scaled by query_pre_attn_scalar^-½ (a float32 scalar in torch's multiply), capped, then windowed.
        var global = new AttentionSpec(sh.Local.NumHeads, sh.Local.NumKvHeads, config.HeadDim, (float)Math.Pow(g.QueryPreAttnScalar, -0.5))
        {
            SoftCap = (float)g.AttnLogitSoftcapping,
        };
        var local = global with { SlidingWindow = config.SlidingWindow };
        var globalRope = new RotaryParams(RotaryEmbedding.InverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling));
        var localRope = new RotaryParams(RotaryEmbedding.InverseFrequencies(config.HeadDim, g.LocalRopeTheta, g.LocalRopeScaling));

        _layers = new Layer[config.NumLayers];
        for (int i = 0; i < _layers.Length; i++)
        {
            string p = $"model.layers.{i}.";
            bool sliding = config.IsSlidingLayer(i);
            _layers[i] = new Layer(
                InputNorm: Norm(p + "input_layernorm.weight", h),
                Q: L(sh.Rows(p + "self_attn.q_proj.weight", q, h, sh.QRows)),
                K: L(sh.Rows(p + "self_attn.k_proj.weight", kv, h, sh.KvRows)),
                V: L(sh.Rows(p + "self_attn.v_proj.weight", kv, h, sh.KvRows)),
                O: L(sh.Columns(p + "self_attn.o_proj.weight", h, q, sh.QRows)),
                QNorm: config.QkNorm ? Norm(p + "self_attn.q_norm.weight", config.HeadDim) : null,
                KNorm: config.QkNorm ? Norm(p + "self_attn.k_norm.weight", config.HeadDim) : null,
                PostAttentionNorm: Norm(p + "post_attention_layernorm.weight", h),
                PreFeedforwardNorm: Norm(p + "pre_feedforward_layernorm.weight", h),
                Gate: L(sh.Rows(p + "mlp.gate_proj.weight", ff, h, sh.Ff)),
                Up: L(sh.Rows(p + "mlp.up_proj.weight", ff, h, sh.Ff)),
                Down: L(sh.Columns(p + "mlp.down_proj.weight", h, ff, sh.Ff)),
                PostFeedforwardNorm: Norm(p + "post_feedforward_layernorm.weight", h),
                Attention: sliding ? local : global,
                Rope: sliding ? localRope : globalRope);
        }
        WeightBytes = WeightSize.Of(_layers.SelectMany(l => new[] { l.InputNorm, l.Q, l.K, l.V, l.O, l.QNorm, l.KNorm,
            l.PostAttentionNorm, l.PreFeedforwardNorm, l.Gate, l.Up, l.Down, l.PostFeedforwardNorm }).Append(_embed).Append(_norm).Append(_lmHead));
    }

    /// <inheritdoc />
    public ModelConfig Config { get; }

    /// <inheritdoc />
    public long WeightBytes { get; }

    /// <inheritdoc />
    public int KvWidth => _shards.Local.NumKvHeads * Config.HeadDim;

    /// <inheritdoc />
    public float[] Forward(ForwardBatch batch, PagedKvCache cache)
    {
        var c = _shards.Local;
        int n = batch.NumTokens, h = c.HiddenSize, qw = c.NumHeads * c.HeadDim;
        float eps = (float)c.NormEps;
        using var x = _b.Empty(n, h);                       // [n, hidden] residual stream
        using var hs = _b.Empty(n, h);                      // [n, hidden] a sub-layer's input, then its output
        using var q = _b.Empty(n, qw);                      // [n, numHeads * headDim]
        using var k = _b.Empty(n, KvWidth);                 // [n, numKvHeads * headDim]
        using var v = _b.Empty(n, KvWidth);                 // [n, numKvHeads * headDim]
        using var attn = _b.Empty(n, qw);                   // [n, numHeads * headDim]
        using var gate = _b.Empty(n, c.IntermediateSize);   // [n, intermediate]
        using var up = _b.Empty(n, c.IntermediateSize);     // [n, intermediate]

        _shards.Embed(_b, _embed, batch.InputIds, x);
        _b.Scale(x, _embedScale);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            // Attention, its output normed before it joins the residual stream.
            _b.RmsNorm(x, L.InputNorm, eps, hs);
            _b.Linear(hs, L.Q, null, q);
            _b.Linear(hs, L.K, null, k);
            _b.Linear(hs, L.V, null, v);
            if (L.QNorm != null)
            {
                _b.RmsNorm(q, L.QNorm, eps, q);     // per head: the weight is [headDim]
                _b.RmsNorm(k, L.KNorm!, eps, k);
            }
            _b.Rope(q, c.HeadDim, batch.Positions, L.Rope);
            _b.Rope(k, c.HeadDim, batch.Positions, L.Rope);
            _b.StoreKv(k, v, cache, l, batch.SlotMapping);
            _b.PagedAttention(q, cache, l, batch, L.Attention, attn);
            _b.Linear(attn, L.O, null, hs);
            _shards.AllReduce(hs);
            _b.RmsNorm(hs, L.PostAttentionNorm, eps, hs);
            _b.Add(x, hs, x);

            // The GeGLU MLP, likewise normed on the way in and on the way out.
            _b.RmsNorm(x, L.PreFeedforwardNorm, eps, hs);
            _b.Linear(hs, L.Gate, null, gate);
            _b.Linear(hs, L.Up, null, up);
            _b.GeluTanhMul(gate, up, gate);
            _b.Linear(gate, L.Down, null, hs);
            _shards.AllReduce(hs);
            _b.RmsNorm(hs, L.PostFeedforwardNorm, eps, hs);
            _b.Add(x, hs, x);
        }
        _b.RmsNorm(x, _norm, eps, hs);
        return _head.Project(hs, batch);
    }

    /// <inheritdoc />
    public void Dispose() =>
        // Stored weights are views on the memory-mapped store (CPU) or owned by the backend; the 1 + w norm weights
        // were made here.
        _madeWeights.Dispose();
}
