using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>RoPE frequency scaling from config.json (`rope_scaling` or `rope_parameters`).</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>
    /// yarn / longrope: the factor the cos and sin tables are multiplied by, when the config gives it
    /// (`attention_factor`); null to derive it from the scaling factor.
    /// </summary>
    public double? AttentionFactor { get; init; }

    /// <summary>yarn: rotations per original context above which a frequency is kept unscaled (`beta_fast`).</summary>
    public double BetaFast { get; init; } = 32;

    /// <summary>yarn: rotations per original context below which a frequency is fully divided (`beta_slow`).</summary>
    public double BetaSlow { get; init; } = 1;

    /// <summary>yarn (DeepSeek style): `mscale` and `mscale_all_dim`, used only when both are set and non-zero.</summary>
    public double? Mscale { get; init; }

    /// <inheritdoc cref="Mscale"/>
    public double? MscaleAllDim { get; init; }

    /// <summary>yarn: whether the correction range's bounds are floored / ceiled to whole dimensions (`truncate`).</summary>
    public bool Truncate { get; init; } = true;

    /// <summary>longrope: per-frequency divisors for sequences within the original context [rotaryDim / 2].</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }

    /// <summary>longrope: per-frequency divisors for long contexts [rotaryDim / 2].</summary>
    public IReadOnlyList<double>? LongFactor { get; init; }

    /// <summary>longrope (vLLM keys): attention factors of the short and long sets, overriding the derived one.</summary>
    public double? ShortMscale { get; init; }

    /// <inheritdoc cref="ShortMscale"/>
    public double? LongMscale { get; init; }
}

/// <summary>
/// The architecture-level facts of a model, normalised from either config.json style. Fields that
/// only one family uses keep neutral defaults for the others.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The `architectures[0]` entry, e.g. Qwen2ForCausalLM.</summary>
    public required string Architecture { get; init; }

    /// <summary>Width of the residual stream.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Number of decoder layers.</summary>
    public required int NumLayers { get; init; }

    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }

    /// <summary>Key/value heads (fewer than query heads under GQA).</summary>
    public required int NumKvHeads { get; init; }

    /// <summary>Width of one head (explicit `head_dim`, else hidden / heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary>MLP inner width (`intermediate_size`, or OPT's `ffn_dim`).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Rows of the embedding and LM head (may exceed the tokenizer's vocabulary).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Longest position the model was trained for.</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>RMSNorm / LayerNorm epsilon.</summary>
    public double NormEps { get; init; } = 1e-6;

    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary>RoPE scaling, or null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>LM head shares the token embedding (no lm_head.weight).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>q/k/v projections carry a bias (Qwen2: always; Llama: `attention_bias`).</summary>
    public bool QkvBias { get; init; }

    /// <summary>The output projection carries a bias (Llama `attention_bias`, OPT).</summary>
    public bool OutputBias { get; init; }

    /// <summary>MLP projections carry biases (Llama `mlp_bias`, OPT).</summary>
    public bool MlpBias { get; init; }

    /// <summary>Per-head RMSNorm on q and k before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }

    /// <summary>Activation of the MLP: silu (gated) or relu (OPT).</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary>dtype the checkpoint declares (`torch_dtype` or `dtype`).</summary>
    public DType? DType { get; init; }

    /// <summary>
    /// `quantization_config.quant_method` (gpt-oss's released checkpoints: mxfp4), or null for an unquantized checkpoint.
    /// No quantized checkpoint format is supported: the engine refuses to load such weights (dummy weights are made unquantized).
    /// </summary>
    public string? QuantizationMethod { get; init; }

    /// <summary>Beginning-of-sequence id from config.json.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence ids from config.json.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Whether this is OPT's decoder (learned positions, LayerNorm, ReLU).</summary>
    public bool IsOpt => Architecture == "OPTForCausalLM";

    // --- Gemma 2 / Gemma 3 ---

    /// <summary>Gemma's own fields (soft caps, score scale, local/global layers); null for other families.</summary>
    public GemmaConfig? Gemma { get; init; }

    // ---- Sliding-window attention and partial rotary (Mistral, Phi-3, Qwen2) ----

    /// <summary>Keys a sliding layer's query sees, its own position included; 0 when no layer slides.</summary>
    public int SlidingWindow { get; init; }

    /// <summary>
    /// Each layer's attention, "sliding_attention" or "full_attention" [numLayers]; every layer is
    /// "full_attention" when <see cref="SlidingWindow"/> is 0. Empty only for configs built in code.
    /// </summary>
    public IReadOnlyList<string> LayerTypes { get; init; } = [];

    /// <summary>Whether layer <paramref name="layer"/> attends over the sliding window only.</summary>
    public bool IsSlidingLayer(int layer) =>
        SlidingWindow > 0 && layer < LayerTypes.Count && LayerTypes[layer] == SlidingAttention;

    /// <summary>Share of each head that RoPE rotates (`partial_rotary_factor`, Phi-4-mini 0.75); the rest passes through.</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;

    /// <summary>Rotated elements of each head: int(headDim · partial_rotary_factor), as transformers truncates it.</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);

    /// <summary>The <see cref="LayerTypes"/> entry of a sliding layer.</summary>
    public const string SlidingAttention = "sliding_attention";

    /// <summary>The <see cref="LayerTypes"/> entry of a full-attention layer.</summary>
    public const string FullAttention = "full_attention";

    // --- mixture of experts ---

    /// <summary>The mixture-of-experts facts (Qwen3-MoE, Mixtral, gpt-oss); null for a dense model.</summary>
    public MoeConfig? Moe { get; init; }
}
