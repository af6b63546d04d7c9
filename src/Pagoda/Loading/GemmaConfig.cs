namespace Pagoda.Loading;

/// <summary>
/// What Gemma 2 and Gemma 3 add to the common config: the attention score scale, the tanh soft caps, and the
/// RoPE of the sliding-window (local) layers. Which layers slide, and the window, are <see cref="ModelConfig.LayerTypes"/>
/// and <see cref="ModelConfig.SlidingWindow"/>; the global layers' RoPE is <see cref="ModelConfig.RopeTheta"/> /
/// <see cref="ModelConfig.RopeScaling"/>.
/// </summary>
public sealed record GemmaConfig
{
    /// <summary>`query_pre_attn_scalar`: attention scores are scaled by its inverse square root, not by headDim's.</summary>
    public double QueryPreAttnScalar { get; init; } = 256;

    /// <summary>`attn_logit_softcapping`: each scaled score s becomes cap · tanh(s / cap); 0 for none (Gemma 3).</summary>
    public double AttnLogitSoftcapping { get; init; }

    /// <summary>`final_logit_softcapping`: the same cap on the output logits; 0 for none (Gemma 3).</summary>
    public double FinalLogitSoftcapping { get; init; }

    /// <summary>RoPE base of the sliding layers (Gemma 3's `rope_local_base_freq`; Gemma 2 uses one base for all).</summary>
    public double LocalRopeTheta { get; init; } = 10000.0;

    /// <summary>RoPE scaling of the sliding layers (none in released checkpoints).</summary>
    public RopeScaling? LocalRopeScaling { get; init; }
}
