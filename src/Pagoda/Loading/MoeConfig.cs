using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>
/// The mixture-of-experts facts of a config.json (Qwen3-MoE, Mixtral, gpt-oss), normalised across the
/// families' key names; <see cref="ModelConfig.Moe"/> is null for dense models.
/// </summary>
public sealed record MoeConfig
{
    /// <summary>Experts per MoE layer (`num_experts`, or `num_local_experts`).</summary>
    public required int NumExperts { get; init; }

    /// <summary>Experts each token is routed to (`num_experts_per_tok`).</summary>
    public required int TopK { get; init; }

    /// <summary>Each expert's inner width (`moe_intermediate_size`, else `intermediate_size`).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Softmax then top-k (Mixtral, Qwen3-MoE), or top-k of the logits then softmax (gpt-oss).</summary>
    public MoeScoring Scoring { get; init; }

    /// <summary>The chosen experts' weights are divided by their sum (Mixtral always; Qwen3-MoE's `norm_topk_prob`).</summary>
    public bool NormTopkProb { get; init; }

    /// <summary>The router has a bias (gpt-oss).</summary>
    public bool RouterBias { get; init; }

    /// <summary>Experts are stored as 3-D [E, in, out] tensors with interleaved gate/up and biases (gpt-oss).</summary>
    public bool StackedExperts { get; init; }

    /// <summary>The experts' activation.</summary>
    public MoeActivation Activation { get; init; }

    /// <summary>Clamp of <see cref="MoeActivation.ClampedSwiglu"/> (`swiglu_limit`, 7 by default).</summary>
    public float SwigluLimit { get; init; } = 7f;

    /// <summary>Layers whose MLP is dense, of the config's `intermediate_size` (Qwen3-MoE's `mlp_only_layers` and `decoder_sparse_step`).</summary>
    public IReadOnlyList<int> DenseLayers { get; init; } = new ValueList<int>([]);

    /// <summary>gpt-oss's learned attention sinks (one logit per head and layer).</summary>
    public bool AttentionSinks { get; init; }

    /// <summary>Architectures read here.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["Qwen3MoeForCausalLM", "MixtralForCausalLM", "GptOssForCausalLM"];

    /// <summary>
    /// The MoE fields of an MoE architecture's config; null for any other architecture. (Sliding windows and layer
    /// types are the common <see cref="ModelConfig"/> fields.)
    /// </summary>
    public static MoeConfig? Read(JsonFields j, string arch, int numLayers)
    {
        if (!Architectures.Contains(arch))
            return null;
        int numExperts = j.Int("num_experts") ?? j.RequiredInt("num_local_experts");
        int topK = j.RequiredInt("num_experts_per_tok");
        if (numExperts < 1 || topK > numExperts)
            throw new ModelLoadException(j.Path, $"num_experts_per_tok {topK} with {numExperts} experts");
        var config = new MoeConfig
        {
            NumExperts = numExperts,
            TopK = topK,
            IntermediateSize = j.Int("moe_intermediate_size") ?? j.RequiredInt("intermediate_size"),
            Scoring = MoeScoring.SoftmaxTopK,
            NormTopkProb = true,
            Activation = MoeActivation.SiluGated,
        };
        return arch switch
        {
            "Qwen3MoeForCausalLM" => config with
            {
                NormTopkProb = j.Bool("norm_topk_prob") ?? false,
                DenseLayers = Qwen3DenseLayers(j, numLayers),
            },
            "MixtralForCausalLM" => config,
            _ => config with
            {
                Scoring = MoeScoring.TopKSoftmax,
                NormTopkProb = false,
                RouterBias = true,
                StackedExperts = true,
                Activation = MoeActivation.ClampedSwiglu,
                SwigluLimit = (float)(j.Double("swiglu_limit") ?? 7.0),
                AttentionSinks = true,
            },
        };
    }

    // transformers' Qwen3-MoE: a layer is sparse unless listed in mlp_only_layers or off the decoder_sparse_step grid.
    private static IReadOnlyList<int> Qwen3DenseLayers(JsonFields j, int numLayers)
    {
        int step = j.Int("decoder_sparse_step") ?? 1;
        if (step <= 0)
            throw new ModelLoadException(j.Path, "'decoder_sparse_step' must be positive");
        var mlpOnly = j.IntOrIntList("mlp_only_layers");
        return new ValueList<int>(Enumerable.Range(0, numLayers).Where(l => mlpOnly.Contains(l) || (l + 1) % step != 0).ToArray());
    }
}
