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
    private readonly ModelConfig _c;

    /// <summary>
    /// Binds `{prefix}q_proj` ... `{prefix}o_proj` (and q_norm / k_norm) through <paramref name="load"/>, which
    /// checks each name against its shape.
    /// </summary>
    public AttentionBlock(IBackend backend, ModelConfig c, string prefix, AttentionSpec spec, Func<string, int[], Tensor> load)
    {
        (_b, _c, Spec) = (backend, c, spec);
        int h = c.HiddenSize, q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim;
        Tensor? Bias(bool present, string name, int size) => present ? load(prefix + name, [size]) : null;
        _q = load(prefix + "q_proj.weight", [q, h]);
        _qBias = Bias(c.QkvBias, "q_proj.bias", q);
        _k = load(prefix + "k_proj.weight", [kv, h]);
        _kBias = Bias(c.QkvBias, "k_proj.bias", kv);
        _v = load(prefix + "v_proj.weight", [kv, h]);
        _vBias = Bias(c.QkvBias, "v_proj.bias", kv);
        _o = load(prefix + "o_proj.weight", [h, q]);
        _oBias = Bias(c.OutputBias, "o_proj.bias", h);
        _qNorm = c.QkNorm ? load(prefix + "q_norm.weight", [c.HeadDim]) : null;
        _kNorm = c.QkNorm ? load(prefix + "k_norm.weight", [c.HeadDim]) : null;
        Weights = [_q, _qBias, _k, _kBias, _v, _vBias, _o, _oBias, _qNorm, _kNorm];
        if (backend is IMergedProjectionOps merged && !c.QkNorm)
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

    /// <summary>hs [n, hidden] (the normed input) → dst [n, hidden], writing the layer's keys and values to the pool.</summary>
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
