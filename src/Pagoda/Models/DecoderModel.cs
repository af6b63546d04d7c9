using Pagoda.Backends;
using Pagoda.Distributed;
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
    private readonly Shards _shards;                   // this rank's weights and counts (the whole model on one rank)

    /// <summary>
    /// Binds every weight, checking names and shapes against the config; with <paramref name="int8Weights"/>
    /// the Linear weights (and the LM head, tied or not) become weight-only int8 copies.
    /// <paramref name="maxModelLen"/> (default max_position_embeddings) picks longrope's factor set. With a
    /// <paramref name="comm"/> of several ranks it binds this rank's shard (Megatron-style: q/k/v and gate/up by
    /// rows, o and down by columns with their biases on rank 0, the embedding and the LM head by vocabulary).
    /// </summary>
    public DecoderModel(ModelConfig config, WeightStore weights, IBackend backend, bool int8Weights = false, int? maxModelLen = null,
        ICommunicator? comm = null)
    {
        Config = config;
        _b = backend;
        var sh = _shards = new Shards(config, weights, comm);
        var tp = sh.Tp;
        int h = config.HiddenSize, hd = config.HeadDim, q = config.NumHeads * hd, kv = config.NumKvHeads * hd, ff = config.IntermediateSize;
        var (qRows, kvRows, ffRows) = (sh.QRows, sh.KvRows, sh.Ff);
        var merged = backend is IMergedProjectionOps m && !config.QkNorm ? m : null;
        Tensor W(string name, params int[] shape) => backend.LoadWeight(weights.View(name, shape));
        Tensor Q(Tensor t)
        {
            if (!int8Weights)
                return t;
            var q8 = backend.QuantizeInt8(t);
            _owned.Add(q8);
            return q8;
        }
        void Release(string name)
        {
            if (int8Weights)
                weights.Release(name);   // only once every part is copied
        }
        // A column-parallel weight (this rank's rows), a row-parallel one (its columns), their biases.
        Tensor C(string name, int total, (int First, int Count) rows)
        {
            var t = Q(backend.LoadWeight(sh.Rows(name, total, h, rows)));
            Release(name);
            return t;
        }
        Tensor R(string name, int total, (int First, int Count) cols)
        {
            var t = Q(backend.LoadWeight(sh.Columns(name, h, total, cols)));
            Release(name);
            return t;
        }
        Tensor? ColumnBias(bool present, string name, int total, (int First, int Count) items) =>
            present ? backend.LoadWeight(sh.Range(name, total, items)) : null;
        Tensor? RowBias(bool present, string name) => present && sh.AddsRowBias ? W(name, h) : null;
        // Phi-3's fused [Σ rows, hidden] weight is already the stacked layout; a plain backend (or a shard) gets row views of it.
        Tensor?[] Fused(string name, int total, params (int First, int Count)[] parts)
        {
            if (merged != null && !tp.IsParallel)
                return [C(name, total, (0, total)), .. new Tensor?[parts.Length - 1]];
            var tensors = parts.Select(p => (Tensor?)Q(backend.LoadWeight(weights.ViewRows(name, [total, h], p.First, p.Count)))).ToArray();
            Release(name);
            return tensors;
        }

        _embed = backend.LoadWeight(sh.Embedding("model.embed_tokens.weight", config.VocabSize, h));
        _norm = W("model.norm.weight", h);
        // A tied head gets its own int8 copy; the embedding keeps its dtype (only rows are read from it).
        _lmHead = config.TieWordEmbeddings ? Q(_embed) : C("lm_head.weight", config.VocabSize, sh.Vocab);
        _head = new LmHead(backend, _lmHead, comm: sh.Comm, vocabSize: config.VocabSize);
        _layers = new Layer[config.NumLayers];
        bool fused = config.Architecture == "Phi3ForCausalLM";
        for (int i = 0; i < _layers.Length; i++)
        {
            string p = $"model.layers.{i}.";
            var qkv = fused ? Fused(p + "self_attn.qkv_proj.weight", q + 2 * kv, qRows, (q + kvRows.First, kvRows.Count), (q + kv + kvRows.First, kvRows.Count))
                : [C(p + "self_attn.q_proj.weight", q, qRows), C(p + "self_attn.k_proj.weight", kv, kvRows), C(p + "self_attn.v_proj.weight", kv, kvRows)];
            var gateUp = fused ? Fused(p + "mlp.gate_up_proj.weight", 2 * ff, ffRows, (ff + ffRows.First, ffRows.Count))
                : [C(p + "mlp.gate_proj.weight", ff, ffRows), C(p + "mlp.up_proj.weight", ff, ffRows)];
            _layers[i] = new Layer(
                InputNorm: W(p + "input_layernorm.weight", h),
                Q: qkv[0]!, QBias: ColumnBias(config.QkvBias, p + "self_attn.q_proj.bias", q, qRows),
                K: qkv[1], KBias: ColumnBias(config.QkvBias, p + "self_attn.k_proj.bias", kv, kvRows),
                V: qkv[2], VBias: ColumnBias(config.QkvBias, p + "self_attn.v_proj.bias", kv, kvRows),
                O: R(p + "self_attn.o_proj.weight", q, qRows), OBias: RowBias(config.OutputBias, p + "self_attn.o_proj.bias"),
                QNorm: config.QkNorm ? W(p + "self_attn.q_norm.weight", hd) : null,
                KNorm: config.QkNorm ? W(p + "self_attn.k_norm.weight", hd) : null,
                PostNorm: W(p + "post_attention_layernorm.weight", h),
                Gate: gateUp[0]!, GateBias: ColumnBias(config.MlpBias, p + "mlp.gate_proj.bias", ff, ffRows),
                Up: gateUp[1], UpBias: ColumnBias(config.MlpBias, p + "mlp.up_proj.bias", ff, ffRows),
                Down: R(p + "mlp.down_proj.weight", ff, ffRows), DownBias: RowBias(config.MlpBias, p + "mlp.down_proj.bias"));
        }
        WeightBytes = WeightSize.Of(_layers.SelectMany(l => new[] { l.InputNorm, l.Q, l.QBias, l.K, l.KBias, l.V, l.VBias, l.O,
            l.OBias, l.QNorm, l.KNorm, l.PostNorm, l.Gate, l.GateBias, l.Up, l.UpBias, l.Down, l.DownBias }).Append(_embed).Append(_norm).Append(_lmHead));
        _rope = RotaryEmbedding.Create(config, maxModelLen ?? config.MaxPositionEmbeddings);
        var full = new AttentionSpec(sh.Local.NumHeads, sh.Local.NumKvHeads, hd, 1f / MathF.Sqrt(hd));
        var sliding = full with { SlidingWindow = config.SlidingWindow };
        _attention = Enumerable.Range(0, config.NumLayers).Select(l => config.IsSlidingLayer(l) ? sliding : full).ToArray();
        if (merged != null)
        {
            _merged = merged;
            if (!fused || tp.IsParallel)
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
    public int KvWidth => _shards.Local.NumKvHeads * _shards.Local.HeadDim;

    /// <inheritdoc />
    public float[] Forward(ForwardBatch batch, PagedKvCache cache)
    {
        var c = _shards.Local;
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
        _shards.Embed(_b, _embed, batch.InputIds, x);
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
            _shards.AllReduce(hs);
            Residual.AddNorm(_b, x, hs, L.PostNorm, eps);
            _b.Linear(hs, L.Gate, L.GateBias, gate);
            _b.Linear(hs, L.Up!, L.UpBias, up);
            _b.SiluMul(gate, up, gate);
            _b.Linear(gate, L.Down, L.DownBias, hs);
            _shards.AllReduce(hs);
            Residual.EndLayer(_b, x, hs, l + 1 < _layers.Length ? _layers[l + 1].InputNorm : _norm, eps, hs);
        }
        if (fused == null)
            _b.RmsNorm(x, _norm, eps, hs);
        return _head.Project(hs, batch);
    }

    /// <summary>The layers with stacked projections (always with the fused add + RMSNorm when offered).</summary>
    private void ForwardStacked(ForwardBatch batch, PagedKvCache cache, Tensor x, Tensor hs, Tensor q, Tensor attn, Tensor act)
    {
        var c = _shards.Local;
        int n = batch.NumTokens;
        float eps = (float)c.NormEps;
        var m = _merged!;
        var fused = _b as IFusedNormOps;
        using var qkv = _b.Empty(n, q.Cols + 2 * KvWidth);           // [n, q + k + v]
        using var gateUp = _b.Empty(n, 2 * c.IntermediateSize);     // [n, gate | up]
        _shards.Embed(_b, _embed, batch.InputIds, x);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            if (fused == null || l == 0)
                _b.RmsNorm(x, L.InputNorm, eps, hs);
            _b.Linear(hs, L.Q, null, qkv);
            m.QkvRopeStore(qkv, L.QBias, c.NumHeads, c.NumKvHeads, c.HeadDim, batch.Positions, _rope, cache, l, batch.SlotMapping, q);
            _b.PagedAttention(q, cache, l, batch, _attention[l], attn);
            _b.Linear(attn, L.O, L.OBias, hs);
            _shards.AllReduce(hs);
            Residual.AddNorm(_b, x, hs, L.PostNorm, eps);
            _b.Linear(hs, L.Gate, L.GateBias, gateUp);
            m.SiluMulStacked(gateUp, act);
            _b.Linear(act, L.Down, L.DownBias, hs);
            _shards.AllReduce(hs);
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
