using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// One decoder layer's self-attention as the Llama-style families share it: q/k/v projections (optional
/// biases), optional per-head q/k RMSNorm (Qwen3), NeoX RoPE, the KV store, paged attention under the layer's
/// <see cref="AttentionSpec"/> (sliding window, sinks), and the output projection (optional bias). On a backend
/// with <see cref="IMergedProjectionOps"/> (and no q/k norm) q/k/v are stacked at load time into one
/// [q + k + v, hidden] weight, with bias, RoPE and the KV store done on its output.
/// </summary>
internal sealed class AttentionBlock
{
    private readonly IBackend _b;
    private readonly Tensor _q, _o;
    private readonly Tensor? _qBias, _k, _kBias, _v, _vBias, _oBias, _qNorm, _kNorm;
    private readonly IMergedProjectionOps? _merged;
    private readonly ModelConfig _c;        // this rank's share: its heads and KV heads
    private readonly Shards _shards;

    /// <summary>
    /// Binds `{prefix}q_proj` ... `{prefix}o_proj` (and q_norm / k_norm) through <paramref name="shards"/>, which
    /// checks each name against its shape and keeps this rank's heads (<paramref name="spec"/> counts them too).
    /// </summary>
    public AttentionBlock(IBackend backend, ModelConfig config, Shards shards, string prefix, AttentionSpec spec)
    {
        (_b, _c, _shards, Spec) = (backend, shards.Local, shards, spec);
        int h = config.HiddenSize, q = config.NumHeads * config.HeadDim, kv = config.NumKvHeads * config.HeadDim;
        Tensor L(HostWeight w) => backend.LoadWeight(w);
        Tensor? Bias(bool present, string name, int size, (int, int) items) => present ? L(shards.Range(prefix + name, size, items)) : null;
        _q = L(shards.Rows(prefix + "q_proj.weight", q, h, shards.QRows));
        _qBias = Bias(config.QkvBias, "q_proj.bias", q, shards.QRows);
        _k = L(shards.Rows(prefix + "k_proj.weight", kv, h, shards.KvRows));
        _kBias = Bias(config.QkvBias, "k_proj.bias", kv, shards.KvRows);
        _v = L(shards.Rows(prefix + "v_proj.weight", kv, h, shards.KvRows));
        _vBias = Bias(config.QkvBias, "v_proj.bias", kv, shards.KvRows);
        _o = L(shards.Columns(prefix + "o_proj.weight", h, q, shards.QRows));
        _oBias = config.OutputBias && shards.AddsRowBias ? L(shards.Whole(prefix + "o_proj.bias", h)) : null;
        _qNorm = config.QkNorm ? L(shards.Whole(prefix + "q_norm.weight", config.HeadDim)) : null;
        _kNorm = config.QkNorm ? L(shards.Whole(prefix + "k_norm.weight", config.HeadDim)) : null;
        Weights = [_q, _qBias, _k, _kBias, _v, _vBias, _o, _oBias, _qNorm, _kNorm];
        if (backend is IMergedProjectionOps merged && !config.QkNorm)
        {
            _merged = merged;
            _q = merged.StackRows(_q, _k, _v);
            _qBias = _qBias == null ? null : merged.StackRows(_qBias, _kBias!, _vBias!);
            (_k, _kBias, _v, _vBias) = (null, null, null, null);
        }
    }

    /// <summary>How this layer's scores are scaled, windowed and normalised.</summary>
    public AttentionSpec Spec { get; }

    /// <summary>The stored weights (before any stacking), for weight accounting.</summary>
    public IReadOnlyList<Tensor?> Weights { get; }

    /// <summary>Buffers for a batch of <paramref name="n"/> tokens, shared by every layer of one forward (all stack alike).</summary>
    public Scratch CreateScratch(int n)
    {
        int qw = _c.NumHeads * _c.HeadDim, kvw = _c.NumKvHeads * _c.HeadDim;
        return _merged != null
            ? new Scratch(_b.Empty(n, qw), _b.Empty(n, qw), null, null, _b.Empty(n, qw + 2 * kvw))
            : new Scratch(_b.Empty(n, qw), _b.Empty(n, qw), _b.Empty(n, kvw), _b.Empty(n, kvw), null);
    }

    /// <summary>
    /// hs [n, hidden] (the normed input) → dst [n, hidden], writing the layer's keys and values to the pool (and summing
    /// the ranks' partial outputs under tensor parallelism).
    /// </summary>
    public void Forward(Tensor hs, ForwardBatch batch, PagedKvCache cache, int layer, RotaryParams rope, Scratch s, Tensor dst)
    {
        var c = _c;
        if (_merged != null)
        {
            _b.Linear(hs, _q, null, s.Qkv!);
            _merged.QkvRopeStore(s.Qkv!, _qBias, c.NumHeads, c.NumKvHeads, c.HeadDim, batch.Positions, rope, cache, layer, batch.SlotMapping, s.Q);
        }
        else
        {
            _b.Linear(hs, _q, _qBias, s.Q);
            _b.Linear(hs, _k!, _kBias, s.K!);
            _b.Linear(hs, _v!, _vBias, s.V!);
            if (_qNorm != null)
            {
                float eps = (float)c.NormEps;
                _b.RmsNorm(s.Q, _qNorm, eps, s.Q);
                _b.RmsNorm(s.K!, _kNorm!, eps, s.K!);
            }
            _b.Rope(s.Q, c.HeadDim, batch.Positions, rope);
            _b.Rope(s.K!, c.HeadDim, batch.Positions, rope);
            _b.StoreKv(s.K!, s.V!, cache, layer, batch.SlotMapping);
        }
        _b.PagedAttention(s.Q, cache, layer, batch, Spec, s.Attn);
        _b.Linear(s.Attn, _o, _oBias, dst);
        _shards.AllReduce(dst);
    }

    /// <summary>One forward's attention buffers.</summary>
    /// <param name="Q">[n, numHeads · headDim] queries.</param>
    /// <param name="Attn">[n, numHeads · headDim] attention output.</param>
    /// <param name="K">[n, numKvHeads · headDim] keys (separate projections only).</param>
    /// <param name="V">[n, numKvHeads · headDim] values (separate projections only).</param>
    /// <param name="Qkv">[n, q + k + v] the stacked projection's output (stacked only).</param>
    public sealed record Scratch(Tensor Q, Tensor Attn, Tensor? K, Tensor? V, Tensor? Qkv) : IDisposable
    {
        public void Dispose()
        {
            Q.Dispose();
            Attn.Dispose();
            K?.Dispose();
            V?.Dispose();
            Qkv?.Dispose();
        }
    }
}
