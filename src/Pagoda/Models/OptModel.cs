using Pagoda.Backends;
using Pagoda.Distributed;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// OPT's decoder: learned absolute positions (offset by 2), pre-LayerNorm, ReLU MLP, biases everywhere,
/// a final LayerNorm and an LM head tied to the token embedding.
/// </summary>
public sealed class OptModel : IModel
{
    // OPT's position table reserves its first two rows (a fairseq padding convention).
    private const int PositionOffset = 2;

    private sealed record Layer(
        Tensor AttnNormW, Tensor AttnNormB, Tensor Q, Tensor QBias, Tensor K, Tensor KBias, Tensor V, Tensor VBias,
        Tensor Out, Tensor? OutBias, Tensor MlpNormW, Tensor MlpNormB, Tensor Fc1, Tensor Fc1Bias, Tensor Fc2, Tensor? Fc2Bias);

    private readonly IBackend _b;
    private readonly Tensor _embed, _positions, _normW, _normB, _lmHead;
    private readonly LmHead _head;
    private readonly Layer[] _layers;
    private readonly Shards _shards;

    /// <summary>
    /// Binds every weight, checking names and shapes against the config (with a <paramref name="comm"/> of several
    /// ranks, this rank's tensor-parallel shard: see <see cref="Shards"/>).
    /// </summary>
    public OptModel(ModelConfig config, WeightStore weights, IBackend backend, ICommunicator? comm = null)
    {
        Config = config;
        _b = backend;
        var sh = _shards = new Shards(config, weights, comm);
        int h = config.HiddenSize, ff = config.IntermediateSize;
        Tensor W(string name, params int[] shape) => backend.LoadWeight(weights.View(name, shape));
        Tensor L(HostWeight w) => backend.LoadWeight(w);
        Tensor? RowBias(string name) => sh.AddsRowBias ? W(name, h) : null;

        const string d = "model.decoder.";
        _embed = L(sh.Embedding(d + "embed_tokens.weight", config.VocabSize, h));
        _positions = W(d + "embed_positions.weight", config.MaxPositionEmbeddings + PositionOffset, h);
        _normW = W(d + "final_layer_norm.weight", h);
        _normB = W(d + "final_layer_norm.bias", h);
        string head = config.TieWordEmbeddings || !weights.Contains("lm_head.weight") ? d + "embed_tokens.weight" : "lm_head.weight";
        _lmHead = head != "lm_head.weight" ? _embed : L(sh.Head(head, config.VocabSize, h));
        _head = new LmHead(backend, _lmHead, comm: sh.Comm, vocabSize: config.VocabSize);
        _layers = new Layer[config.NumLayers];
        for (int i = 0; i < _layers.Length; i++)
        {
            string p = $"{d}layers.{i}.";
            _layers[i] = new Layer(
                W(p + "self_attn_layer_norm.weight", h), W(p + "self_attn_layer_norm.bias", h),
                L(sh.Rows(p + "self_attn.q_proj.weight", h, h, sh.QRows)), L(sh.Range(p + "self_attn.q_proj.bias", h, sh.QRows)),
                L(sh.Rows(p + "self_attn.k_proj.weight", h, h, sh.KvRows)), L(sh.Range(p + "self_attn.k_proj.bias", h, sh.KvRows)),
                L(sh.Rows(p + "self_attn.v_proj.weight", h, h, sh.KvRows)), L(sh.Range(p + "self_attn.v_proj.bias", h, sh.KvRows)),
                L(sh.Columns(p + "self_attn.out_proj.weight", h, h, sh.QRows)), RowBias(p + "self_attn.out_proj.bias"),
                W(p + "final_layer_norm.weight", h), W(p + "final_layer_norm.bias", h),
                L(sh.Rows(p + "fc1.weight", ff, h, sh.Ff)), L(sh.Range(p + "fc1.bias", ff, sh.Ff)),
                L(sh.Columns(p + "fc2.weight", h, ff, sh.Ff)), RowBias(p + "fc2.bias"));
        }
    }

    /// <inheritdoc />
    public ModelConfig Config { get; }

    /// <inheritdoc />
    public long WeightBytes => WeightSize.Of(_layers.SelectMany(l => new[] { l.AttnNormW, l.AttnNormB, l.Q, l.QBias, l.K, l.KBias, l.V,
        l.VBias, l.Out, l.OutBias, l.MlpNormW, l.MlpNormB, l.Fc1, l.Fc1Bias, l.Fc2, l.Fc2Bias }).Concat([_embed, _positions, _normW, _normB, _lmHead]));

    /// <inheritdoc />
    public int KvWidth => _shards.Local.NumKvHeads * Config.HeadDim;

    /// <inheritdoc />
    public float[] Forward(ForwardBatch batch, PagedKvCache cache)
    {
        var c = _shards.Local;
        int n = batch.NumTokens, h = c.HiddenSize, qw = c.NumHeads * c.HeadDim;
        float eps = (float)c.NormEps;
        var spec = new AttentionSpec(c.NumHeads, c.NumKvHeads, c.HeadDim, 1f / MathF.Sqrt(c.HeadDim));
        using var x = _b.Empty(n, h);                       // [n, hidden] residual stream
        using var hs = _b.Empty(n, h);                      // [n, hidden]
        using var q = _b.Empty(n, qw);                      // [n, numHeads * headDim] (this rank's heads)
        using var k = _b.Empty(n, qw);
        using var v = _b.Empty(n, qw);
        using var attn = _b.Empty(n, qw);
        using var ffn = _b.Empty(n, c.IntermediateSize);    // [n, ffn_dim]

        _shards.Embed(_b, _embed, batch.InputIds, x);
        _b.Embedding(_positions, batch.Positions.Select(p => p + PositionOffset).ToArray(), hs);
        _b.Add(x, hs, x);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            _b.LayerNorm(x, L.AttnNormW, L.AttnNormB, eps, hs);
            _b.Linear(hs, L.Q, L.QBias, q);
            _b.Linear(hs, L.K, L.KBias, k);
            _b.Linear(hs, L.V, L.VBias, v);
            _b.StoreKv(k, v, cache, l, batch.SlotMapping);
            _b.PagedAttention(q, cache, l, batch, spec, attn);
            _b.Linear(attn, L.Out, L.OutBias, hs);
            _shards.AllReduce(hs);
            _b.Add(x, hs, x);

            _b.LayerNorm(x, L.MlpNormW, L.MlpNormB, eps, hs);
            _b.Linear(hs, L.Fc1, L.Fc1Bias, ffn);
            _b.Relu(ffn);
            _b.Linear(ffn, L.Fc2, L.Fc2Bias, hs);
            _shards.AllReduce(hs);
            _b.Add(x, hs, x);
        }
        _b.LayerNorm(x, _normW, _normB, eps, hs);
        return _head.Project(hs, batch);
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
