using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>RoPE frequency scaling from config.json (`rope_scaling` or `rope_parameters`).</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

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

    /// <summary>Beginning-of-sequence id from config.json.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence ids from config.json.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Whether this is OPT's decoder (learned positions, LayerNorm, ReLU).</summary>
    public bool IsOpt => Architecture == "OPTForCausalLM";

    // --- Gemma 2 / Gemma 3 ---

    /// <summary>Gemma's own fields (soft caps, score scale, local/global layers); null for other families.</summary>
    public GemmaConfig? Gemma { get; init; }

    // --- mixture of experts ---

    /// <summary>The mixture-of-experts facts (Qwen3-MoE, Mixtral, gpt-oss); null for a dense model.</summary>
    public MoeConfig? Moe { get; init; }
}
