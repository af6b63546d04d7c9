using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// The Llama-style decoder: RMSNorm, RoPE attention with GQA, SiLU-gated MLP. Qwen2 (q/k/v bias), Qwen3
/// (per-head q/k RMSNorm), Mistral (sliding window) and Phi-3 (fused projections, partial rotary) are flags on
/// it. On a backend with <see cref="IMergedProjectionOps"/> (and no q/k norm) q/k/v and gate/up are stacked at
/// load time: Q holds [q+k+v, hidden] and Gate holds [2·intermediate, hidden], with K, V and Up null.
/// </summary>
public sealed class DecoderModel : IModel
{
    private sealed record Layer(
        Tensor InputNorm, Tensor Q, Tensor? QBias, Tensor? K, Tensor? KBias, Tensor? V, Tensor? VBias,
        Tensor O, Tensor? OBias, Tensor? QNorm, Tensor? KNorm, Tensor PostNorm,
        Tensor Gate, Tensor? GateBias, Tensor? Up, Tensor? UpBias, Tensor Down, Tensor? DownBias);

    private readonly IBackend _b;
    private readonly Tensor _embed, _norm, _lmHead;
    private readonly LmHead _head;
    private readonly Layer[] _layers;
    private readonly RotaryParams _rope;
    private readonly AttentionSpec[] _attention;        // per layer: sliding layers carry the window
    private readonly IMergedProjectionOps? _merged;
    private readonly List<Tensor> _owned = [];

    /// <summary>
    /// Binds every weight, checking names and shapes against the config; with <paramref name="int8Weights"/>
    /// the Linear weights (and the LM head, tied or not) become weight-only int8 copies.
    /// <paramref name="maxModelLen"/> (default max_position_embeddings) picks longrope's factor set.
    /// </summary>
    public DecoderModel(ModelConfig config, WeightStore weights, IBackend backend, bool int8Weights = false, int? maxModelLen = null)
    {
        Config = config;
        _b = backend;
        int h = config.HiddenSize, q = config.NumHeads * config.HeadDim, kv = KvWidth, ff = config.IntermediateSize;
        var merged = backend is IMergedProjectionOps m && !config.QkNorm ? m : null;
        Tensor W(string name, params int[] shape) => backend.LoadWeight(weights.View(name, shape));
        Tensor? B(bool present, string name, int size) => present ? W(name, size) : null;
        Tensor Q(Tensor t)
        {
            if (!int8Weights)
                return t;
            var q8 = backend.QuantizeInt8(t);
            _owned.Add(q8);
            return q8;
        }
        Tensor L(string name, params int[] shape)
        {
            var q8 = Q(W(name, shape));
            if (int8Weights)
                weights.Release(name);
            return q8;
        }
        // Phi-3's fused [Σ rows, hidden] weight is already the stacked layout; a plain backend gets row views of it.
        Tensor?[] Fused(string name, params int[] rows)
        {
            if (merged != null)
                return [L(name, rows.Sum(), h), .. new Tensor?[rows.Length - 1]];
            var parts = new Tensor?[rows.Length];
            for (int i = 0, first = 0; i < rows.Length; first += rows[i++])
                parts[i] = Q(backend.LoadWeight(weights.ViewRows(name, [rows.Sum(), h], first, rows[i])));
            if (int8Weights)
                weights.Release(name);  // only once every part is copied
            return parts;
        }

        _embed = W("model.embed_tokens.weight", config.VocabSize, h);
        _norm = W("model.norm.weight", h);
        // A tied head gets its own int8 copy; the embedding keeps its dtype (only rows are read from it).
        _lmHead = config.TieWordEmbeddings ? Q(_embed) : L("lm_head.weight", config.VocabSize, h);
        _head = new LmHead(backend, _lmHead);
        _layers = new Layer[config.NumLayers];
        bool fused = config.Architecture == "Phi3ForCausalLM";
        for (int i = 0; i < _layers.Length; i++)
        {
            string p = $"model.layers.{i}.";
            var qkv = fused ? Fused(p + "self_attn.qkv_proj.weight", q, kv, kv)
                : [L(p + "self_attn.q_proj.weight", q, h), L(p + "self_attn.k_proj.weight", kv, h), L(p + "self_attn.v_proj.weight", kv, h)];
            var gateUp = fused ? Fused(p + "mlp.gate_up_proj.weight", ff, ff)
                : [L(p + "mlp.gate_proj.weight", ff, h), L(p + "mlp.up_proj.weight", ff, h)];
            _layers[i] = new Layer(
                InputNorm: W(p + "input_layernorm.weight", h),
                Q: qkv[0]!, QBias: B(config.QkvBias, p + "self_attn.q_proj.bias", q),
                K: qkv[1], KBias: B(config.QkvBias, p + "self_attn.k_proj.bias", kv),
                V: qkv[2], VBias: B(config.QkvBias, p + "self_attn.v_proj.bias", kv),
                O: L(p + "self_attn.o_proj.weight", h, q), OBias: B(config.OutputBias, p + "self_attn.o_proj.bias", h),
                QNorm: config.QkNorm ? W(p + "self_attn.q_norm.weight", config.HeadDim) : null,
                KNorm: config.QkNorm ? W(p + "self_attn.k_norm.weight", config.HeadDim) : null,
                PostNorm: W(p + "post_attention_layernorm.weight", h),
                Gate: gateUp[0]!, GateBias: B(config.MlpBias, p + "mlp.gate_proj.bias", ff),
                Up: gateUp[1], UpBias: B(config.MlpBias, p + "mlp.up_proj.bias", ff),
                Down: L(p + "mlp.down_proj.weight", h, ff), DownBias: B(config.MlpBias, p + "mlp.down_proj.bias", h));
        }
        WeightBytes = WeightSize.Of(_layers.SelectMany(l => new[] { l.InputNorm, l.Q, l.QBias, l.K, l.KBias, l.V, l.VBias, l.O,
            l.OBias, l.QNorm, l.KNorm, l.PostNorm, l.Gate, l.GateBias, l.Up, l.UpBias, l.Down, l.DownBias }).Append(_embed).Append(_norm).Append(_lmHead));
        _rope = RotaryEmbedding.Create(config, maxModelLen ?? config.MaxPositionEmbeddings);
        var full = new AttentionSpec(config.NumHeads, config.NumKvHeads, config.HeadDim, 1f / MathF.Sqrt(config.HeadDim));
        var sliding = full with { SlidingWindow = config.SlidingWindow };
        _attention = Enumerable.Range(0, config.NumLayers).Select(l => config.IsSlidingLayer(l) ? sliding : full).ToArray();
        if (merged != null)
        {
            _merged = merged;
            if (!fused)
            {
                for (int i = 0; i < _layers.Length; i++)
                    _layers[i] = Stack(merged, _layers[i]);
            }
        }
    }

    private static Layer Stack(IMergedProjectionOps m, Layer L)
    {
        Tensor? Bias(params Tensor?[] parts) => parts[0] == null ? null : m.StackRows(parts!);
        return L with
        {
            Q = m.StackRows(L.Q, L.K!, L.V!), QBias = Bias(L.QBias, L.KBias, L.VBias), K = null, KBias = null, V = null, VBias = null,
            Gate = m.StackRows(L.Gate, L.Up!), GateBias = Bias(L.GateBias, L.UpBias), Up = null, UpBias = null,
        };
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
        using var hs = _b.Empty(n, h);                      // [n, hidden] normed input
        using var q = _b.Empty(n, qw);                      // [n, numHeads * headDim]
        using var attn = _b.Empty(n, qw);                   // [n, numHeads * headDim]
        using var gate = _b.Empty(n, c.IntermediateSize);   // [n, intermediate]
        if (_merged != null)
        {
            ForwardStacked(batch, cache, x, hs, q, attn, gate);
            return _head.Project(hs, batch);
        }
        using var k = _b.Empty(n, KvWidth);                 // [n, numKvHeads * headDim]
        using var v = _b.Empty(n, KvWidth);                 // [n, numKvHeads * headDim]
        using var up = _b.Empty(n, c.IntermediateSize);     // [n, intermediate]

        // With a fused residual-add + RMSNorm each sub-layer's add also makes the next sub-layer's input.
        var fused = _b as IFusedNormOps;
        _b.Embedding(_embed, batch.InputIds, x);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            if (fused == null || l == 0)
                _b.RmsNorm(x, L.InputNorm, eps, hs);
            _b.Linear(hs, L.Q, L.QBias, q);
            _b.Linear(hs, L.K!, L.KBias, k);
            _b.Linear(hs, L.V!, L.VBias, v);
            if (L.QNorm != null)
            {
                _b.RmsNorm(q, L.QNorm, eps, q);
                _b.RmsNorm(k, L.KNorm!, eps, k);
            }
            _b.Rope(q, c.HeadDim, batch.Positions, _rope);
            _b.Rope(k, c.HeadDim, batch.Positions, _rope);
            _b.StoreKv(k, v, cache, l, batch.SlotMapping);
            _b.PagedAttention(q, cache, l, batch, _attention[l], attn);
            _b.Linear(attn, L.O, L.OBias, hs);
            Residual.AddNorm(_b, x, hs, L.PostNorm, eps);
            _b.Linear(hs, L.Gate, L.GateBias, gate);
            _b.Linear(hs, L.Up!, L.UpBias, up);
            _b.SiluMul(gate, up, gate);
            _b.Linear(gate, L.Down, L.DownBias, hs);
            Residual.EndLayer(_b, x, hs, l + 1 < _layers.Length ? _layers[l + 1].InputNorm : _norm, eps, hs);
        }
        if (fused == null)
            _b.RmsNorm(x, _norm, eps, hs);
        return _head.Project(hs, batch);
    }

    /// <summary>The layers with stacked projections (always with the fused add + RMSNorm when offered).</summary>
    private void ForwardStacked(ForwardBatch batch, PagedKvCache cache, Tensor x, Tensor hs, Tensor q, Tensor attn, Tensor act)
    {
        var c = Config;
        int n = batch.NumTokens;
        float eps = (float)c.NormEps;
        var m = _merged!;
        var fused = _b as IFusedNormOps;
        using var qkv = _b.Empty(n, q.Cols + 2 * KvWidth);           // [n, q + k + v]
        using var gateUp = _b.Empty(n, 2 * c.IntermediateSize);     // [n, gate | up]
        _b.Embedding(_embed, batch.InputIds, x);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            if (fused == null || l == 0)
                _b.RmsNorm(x, L.InputNorm, eps, hs);
            _b.Linear(hs, L.Q, null, qkv);
            m.QkvRopeStore(qkv, L.QBias, c.NumHeads, c.NumKvHeads, c.HeadDim, batch.Positions, _rope, cache, l, batch.SlotMapping, q);
            _b.PagedAttention(q, cache, l, batch, _attention[l], attn);
            _b.Linear(attn, L.O, L.OBias, hs);
            Residual.AddNorm(_b, x, hs, L.PostNorm, eps);
            _b.Linear(hs, L.Gate, L.GateBias, gateUp);
            m.SiluMulStacked(gateUp, act);
            _b.Linear(act, L.Down, L.DownBias, hs);
            Residual.EndLayer(_b, x, hs, l + 1 < _layers.Length ? _layers[l + 1].InputNorm : _norm, eps, hs);
        }
        if (fused == null)
            _b.RmsNorm(x, _norm, eps, hs);
    }


    /// <inheritdoc />
    public void Dispose()
    {
        // Stored weights are views on the memory-mapped store (CPU) or owned by the backend; only
        // quantized copies belong to the model.
        foreach (var t in _owned)
            t.Dispose();
        _owned.Clear();
    }
}
