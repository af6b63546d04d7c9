using Pagoda.Backends;
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

    /// <summary>Binds every weight, checking names and shapes against the config.</summary>
    public GemmaModel(ModelConfig config, WeightStore weights, IBackend backend)
    {
        var g = config.Gemma ?? throw new ArgumentException($"{config.Architecture} config has no Gemma fields", nameof(config));
        float finalCap = (float)g.FinalLogitSoftcapping;
        Config = config;
        _b = backend;
        int h = config.HiddenSize, q = config.NumHeads * config.HeadDim, kv = KvWidth, ff = config.IntermediateSize;
        Tensor W(string name, params int[] shape) => backend.LoadWeight(weights.View(name, shape));
        // Gemma's RMSNorm multiplies by (1 + w) in float32: made once here, so the backend's RmsNorm applies it as is.
        Tensor Norm(string name, int size)
        {
            var w = HostMadeWeights.Widen(weights.View(name, size));
            for (int i = 0; i < w.Length; i++)
                w[i] = 1f + w[i];
            return _madeWeights.Load(backend, name, w, size);
        }

        _embed = W("model.embed_tokens.weight", config.VocabSize, h);
        _norm = Norm("model.norm.weight", h);
        _lmHead = config.TieWordEmbeddings ? _embed : W("lm_head.weight", config.VocabSize, h);
        _head = new LmHead(backend, _lmHead, finalCap);
        // transformers casts the normalizer √hidden to the activations' dtype (float32 here) before multiplying.
        _embedScale = (float)Math.Sqrt(h);

        // Scores are scaled by query_pre_attn_scalar^-½ (a float32 scalar in torch's multiply), capped, then windowed.
        var global = new AttentionSpec(config.NumHeads, config.NumKvHeads, config.HeadDim, (float)Math.Pow(g.QueryPreAttnScalar, -0.5))
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
                Q: W(p + "self_attn.q_proj.weight", q, h),
                K: W(p + "self_attn.k_proj.weight", kv, h),
                V: W(p + "self_attn.v_proj.weight", kv, h),
                O: W(p + "self_attn.o_proj.weight", h, q),
                QNorm: config.QkNorm ? Norm(p + "self_attn.q_norm.weight", config.HeadDim) : null,
                KNorm: config.QkNorm ? Norm(p + "self_attn.k_norm.weight", config.HeadDim) : null,
                PostAttentionNorm: Norm(p + "post_attention_layernorm.weight", h),
                PreFeedforwardNorm: Norm(p + "pre_feedforward_layernorm.weight", h),
                Gate: W(p + "mlp.gate_proj.weight", ff, h),
                Up: W(p + "mlp.up_proj.weight", ff, h),
                Down: W(p + "mlp.down_proj.weight", h, ff),
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
    public int KvWidth => Config.NumKvHeads * Config.HeadDim;

    /// <inheritdoc />
    public float[] Forward(ForwardBatch batch, PagedKvCache cache)
    {
        var c = Config;
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

        _b.Embedding(_embed, batch.InputIds, x);
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
            _b.RmsNorm(hs, L.PostAttentionNorm, eps, hs);
            _b.Add(x, hs, x);

            // The GeGLU MLP, likewise normed on the way in and on the way out.
            _b.RmsNorm(x, L.PreFeedforwardNorm, eps, hs);
            _b.Linear(hs, L.Gate, null, gate);
            _b.Linear(hs, L.Up, null, up);
            _b.GeluTanhMul(gate, up, gate);
            _b.Linear(gate, L.Down, null, hs);
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
