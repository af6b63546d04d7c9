namespace Pagoda.Loading;

/// <summary>
/// What Gemma 2 and Gemma 3 add to the common config: the attention score scale, the tanh soft caps, and the
/// per-layer choice between sliding-window (local) and full (global) attention, each with its own RoPE.
/// The global layers' RoPE is <see cref="ModelConfig.RopeTheta"/> / <see cref="ModelConfig.RopeScaling"/>.
/// </summary>
public sealed record GemmaConfig
{
    /// <summary>Layer type of a sliding-window (local) layer in `layer_types`.</summary>
    public const string SlidingAttention = "sliding_attention";

    /// <summary>Layer type of a full (global) attention layer in `layer_types`.</summary>
    public const string FullAttention = "full_attention";

    /// <summary>`query_pre_attn_scalar`: attention scores are scaled by its inverse square root, not by headDim's.</summary>
    public double QueryPreAttnScalar { get; init; } = 256;

    /// <summary>`attn_logit_softcapping`: each scaled score s becomes cap · tanh(s / cap); 0 for none (Gemma 3).</summary>
    public double AttnLogitSoftcapping { get; init; }

    /// <summary>`final_logit_softcapping`: the same cap on the output logits; 0 for none (Gemma 3).</summary>
    public double FinalLogitSoftcapping { get; init; }

    /// <summary>`sliding_window`: keys a local layer's query sees, its own position included.</summary>
    public int SlidingWindow { get; init; } = 4096;

    /// <summary>`layer_types`, one per layer: <see cref="SlidingAttention"/> or <see cref="FullAttention"/>.</summary>
    public IReadOnlyList<string> LayerTypes { get; init; } = [];

    /// <summary>RoPE base of the sliding layers (Gemma 3's `rope_local_base_freq`; Gemma 2 uses one base for all).</summary>
    public double LocalRopeTheta { get; init; } = 10000.0;

    /// <summary>RoPE scaling of the sliding layers (none in released checkpoints).</summary>
    public RopeScaling? LocalRopeScaling { get; init; }

    /// <summary>Whether a layer uses sliding-window attention (and the local RoPE).</summary>
    public bool IsSliding(int layer) => LayerTypes[layer] == SlidingAttention;
}
