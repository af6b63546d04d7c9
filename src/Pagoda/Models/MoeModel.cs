using Pagoda.Backends;
using Pagoda.Distributed;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// The mixture-of-experts decoders: Llama-style layers (RMSNorm, RoPE attention with GQA) whose MLP is a
/// routed set of experts run by the backend's <see cref="IMoeOps"/>. Qwen3-MoE (q/k RMSNorm, softmax routing
/// with norm_topk_prob, optional dense layers), Mixtral (softmax routing, renormalised top-k) and gpt-oss (biased
/// router, top-k then softmax, clamped SwiGLU experts with biases, attention with biases, learned sinks and
/// alternating sliding / full layers).
/// </summary>
public sealed class MoeModel : IModel
{
    // A layer's MLP is either routed experts (Router, Experts) or dense (Gate, Up, Down: Qwen3-MoE's mlp_only_layers).
    private sealed record Layer(Tensor InputNorm, AttentionBlock Attention, Tensor PostNorm,
        Tensor? Router, Tensor? RouterBias, MoeExperts? Experts, Tensor? Gate, Tensor? Up, Tensor? Down);

    private readonly IBackend _b;
    private readonly IMoeOps _moe;
    private readonly Tensor _embed, _norm, _lmHead;
    private readonly LmHead _head;
    private readonly Layer[] _layers;
    private readonly RotaryParams _rope;
    private readonly MoeSpec _spec;
    private readonly Shards _shards;

    /// <summary>
    /// Binds every weight, checking names and shapes against the config, and prepares each layer's experts;
    /// <paramref name="maxModelLen"/> (default max_position_embeddings) is the engine's longest sequence, for the RoPE.
    /// </summary>
    public MoeModel(ModelConfig config, WeightStore weights, IBackend backend, int? maxModelLen = null, ICommunicator? comm = null)
    {
        var moe = config.Moe ?? throw new ArgumentException($"{config.Architecture} has no MoE fields", nameof(config));
        // Checked before any weight is uploaded: without the capability nothing of the model could run.
        _moe = backend as IMoeOps ?? throw new NotSupportedException(
            $"the {backend.Name} backend cannot run mixture-of-experts models ({config.Architecture}) yet; use the CPU backend");
        Config = config;
        _b = backend;
        int h = config.HiddenSize, ff = moe.IntermediateSize, numExperts = moe.NumExperts;
        var sh = _shards = new Shards(config, weights, comm, ff);
        var (ffFirst, ffLocal) = sh.Ff;
        Tensor W(string name, params int[] shape) => backend.LoadWeight(weights.View(name, shape));
        Tensor L(HostWeight w) => backend.LoadWeight(w);

        _embed = L(sh.Embedding("model.embed_tokens.weight", config.VocabSize, h));
        _norm = W("model.norm.weight", h);
        _lmHead = config.TieWordEmbeddings ? _embed : L(sh.Head("lm_head.weight", config.VocabSize, h));
        _head = new LmHead(backend, _lmHead, comm: sh.Comm, vocabSize: config.VocabSize);
        var (mlp, router) = config.Architecture switch
        {
            "MixtralForCausalLM" => ("block_sparse_moe.", "gate"),
            "GptOssForCausalLM" => ("mlp.", "router"),
            _ => ("mlp.", "gate"),
        };
        _layers = new Layer[config.NumLayers];
        long expertBytes = 0;
        for (int i = 0; i < _layers.Length; i++)
        {
            string p = $"model.layers.{i}.";
            var attention = new AttentionBlock(backend, config, sh, p + "self_attn.", AttentionSpecOf(config, sh, weights, p, i));
            var layer = new Layer(W(p + "input_layernorm.weight", h), attention, W(p + "post_attention_layernorm.weight", h),
                null, null, null, null, null, null);
            if (moe.DenseLayers.Contains(i))
            {
                int dense = config.IntermediateSize;
                var rows = sh.DenseFf;
                _layers[i] = layer with
                {
                    Gate = L(sh.Rows(p + "mlp.gate_proj.weight", dense, h, rows)), Up = L(sh.Rows(p + "mlp.up_proj.weight", dense, h, rows)),
                    Down = L(sh.Columns(p + "mlp.down_proj.weight", h, dense, rows)),
                };
                continue;
            }
            string e = p + mlp + "experts.";
            // Each expert split by tensor: its gate/up rows (interleaved columns of the stacked form) and its down columns
            // (rows of the stacked form) of this rank's intermediate slice.
            var stored = new MoeExpertWeights(numExperts, h, ffLocal);
            stored = moe.StackedExperts
                ? stored with
                {
                    GateUp = L(sh.Runs(e + "gate_up_proj", [numExperts, h, 2 * ff], 2 * ff, 2 * ffFirst, 2 * ffLocal, [numExperts, h, 2 * ffLocal])),
                    GateUpBias = L(sh.Runs(e + "gate_up_proj_bias", [numExperts, 2 * ff], 2 * ff, 2 * ffFirst, 2 * ffLocal, [numExperts, 2 * ffLocal])),
                    DownStacked = L(sh.Runs(e + "down_proj", [numExperts, ff, h], ff * h, ffFirst * h, ffLocal * h, [numExperts, ffLocal, h])),
                    DownBias = sh.AddsRowBias ? W(e + "down_proj_bias", numExperts, h) : null,
                }
                : config.Architecture == "MixtralForCausalLM"
                    ? stored with { Gate = Experts(e, "w1", true), Up = Experts(e, "w3", true), Down = Experts(e, "w2", false) }
                    : stored with { Gate = Experts(e, "gate_proj", true), Up = Experts(e, "up_proj", true), Down = Experts(e, "down_proj", false) };
            _layers[i] = layer with
            {
                Router = W(p + mlp + router + ".weight", numExperts, h),
                RouterBias = moe.RouterBias ? W(p + mlp + router + ".bias", numExperts) : null,
                Experts = _moe.PrepareExperts(stored),
            };
            expertBytes += WeightSize.Of(stored.Tensors);
        }
        WeightBytes = expertBytes + WeightSize.Of(_layers.SelectMany(l => l.Attention.Weights
            .Concat([l.InputNorm, l.PostNorm, l.Router, l.RouterBias, l.Gate, l.Up, l.Down])).Append(_embed).Append(_norm).Append(_lmHead));
        _rope = RotaryEmbedding.Create(config, maxModelLen ?? config.MaxPositionEmbeddings);
        _spec = new MoeSpec(moe.TopK, moe.Scoring, moe.NormTopkProb, moe.Activation) { SwigluLimit = moe.SwigluLimit };

        // Expert e's Linear weight `{prefix}{e}.{name}.weight` for e = 0 .. numExperts - 1: gate and up [ff, hidden] by rows, down
        // [hidden, ff] by columns.
        Tensor[] Experts(string prefix, string name, bool gateOrUp) =>
            Enumerable.Range(0, numExperts).Select(x => L(gateOrUp ? sh.Rows($"{prefix}{x}.{name}.weight", ff, h, sh.Ff)
                : sh.Columns($"{prefix}{x}.{name}.weight", h, ff, sh.Ff))).ToArray();
    }

    // The layer's score scale, window (gpt-oss's sliding layers) and sinks (one learned logit per head of this rank).
    private static AttentionSpec AttentionSpecOf(ModelConfig c, Shards sh, WeightStore weights, string prefix, int layer)
    {
        return new AttentionSpec(sh.Local.NumHeads, sh.Local.NumKvHeads, c.HeadDim, 1f / MathF.Sqrt(c.HeadDim))
        {
            SlidingWindow = c.IsSlidingLayer(layer) ? c.SlidingWindow : 0,
            Sinks = c.Moe!.AttentionSinks ? HostMadeWeights.Widen(sh.Range(prefix + "self_attn.sinks", c.NumHeads, sh.Heads)) : null,
        };
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
        int n = batch.NumTokens, h = c.HiddenSize;
        float eps = (float)c.NormEps;
        bool anyDense = c.Moe!.DenseLayers.Count > 0;
        using var x = _b.Empty(n, h);                                   // [n, hidden] residual stream
        using var hs = _b.Empty(n, h);                                  // [n, hidden] normed input / sub-layer output
        using var mlpOut = _b.Empty(n, h);                              // [n, hidden] the MLP's output
        using var logits = _b.Empty(n, c.Moe.NumExperts);               // [n, numExperts] router logits
        using var gate = anyDense ? _b.Empty(n, c.IntermediateSize) : null;   // [n, intermediate] dense layers only
        using var up = anyDense ? _b.Empty(n, c.IntermediateSize) : null;     // [n, intermediate] dense layers only
        using var scratch = _layers[0].Attention.CreateScratch(n);

        // With a fused residual-add + RMSNorm each sub-layer's add also makes the next sub-layer's input.
        var fused = _b as IFusedNormOps;
        _shards.Embed(_b, _embed, batch.InputIds, x);
        for (int l = 0; l < _layers.Length; l++)
        {
            var L = _layers[l];
            if (fused == null || l == 0)
                _b.RmsNorm(x, L.InputNorm, eps, hs);
            L.Attention.Forward(hs, batch, cache, l, _rope, scratch, hs);
            Residual.AddNorm(_b, x, hs, L.PostNorm, eps);
            if (L.Experts != null)
            {
                _b.Linear(hs, L.Router!, L.RouterBias, logits);
                _moe.FusedMoe(hs, logits, L.Experts, _spec, mlpOut);
                _shards.AllReduce(mlpOut);
            }
            else
            {
                _b.Linear(hs, L.Gate!, null, gate!);
                _b.Linear(hs, L.Up!, null, up!);
                _b.SiluMul(gate!, up!, gate!);
                _b.Linear(gate!, L.Down!, null, mlpOut);
                _shards.AllReduce(mlpOut);
            }
            Residual.EndLayer(_b, x, mlpOut, l + 1 < _layers.Length ? _layers[l + 1].InputNorm : _norm, eps, hs);
        }
        if (fused == null)
            _b.RmsNorm(x, _norm, eps, hs);
        return _head.Project(hs, batch);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        // Stored weights are views on the memory-mapped store (CPU) or owned by the backend; the prepared
        // experts may hold copies (gpt-oss's transposed ones on the CPU).
        foreach (var l in _layers)
            l.Experts?.Dispose();
    }
}
