namespace Pagoda.Loading;

/// <summary>Sliding windows and the yarn / longrope RoPE parameters, read as transformers' config classes read them.</summary>
public static partial class ConfigReader
{
    /// <summary>
    /// The window and every layer's attention type. Mistral and Phi-3 slide every layer when `sliding_window`
    /// is set (MistralConfig defaults an absent key to 4096; null disables it). Qwen2 / Qwen3 slide only with
    /// `use_sliding_window`, and then the layers from `max_window_layers` on (Qwen3-MoE, which has no
    /// max_window_layers: every layer). Mixtral slides every layer when `sliding_window` is set; gpt-oss alternates
    /// sliding and full layers, sliding first (GptOssConfig's defaults: window 128). An explicit `layer_types` list
    /// wins over these rules; without a window every layer is full attention whatever the list says.
    /// </summary>
    private static (int Window, IReadOnlyList<string> LayerTypes) ReadSlidingWindow(JsonFields j, string arch, int numLayers)
    {
        int? window = arch switch
        {
            "MistralForCausalLM" => j.Has("sliding_window") ? j.Int("sliding_window") : 4096,
            "Phi3ForCausalLM" => j.Int("sliding_window"),
            "Qwen2ForCausalLM" or "Qwen3ForCausalLM" or "Qwen3MoeForCausalLM" when j.Bool("use_sliding_window") == true =>
                j.Has("sliding_window") ? j.Int("sliding_window") : 4096,
            "MixtralForCausalLM" => j.Int("sliding_window"),
            "GptOssForCausalLM" => j.Has("sliding_window") ? j.Int("sliding_window") : 128,
            _ => null,
        };
        if (window is not { } w)
            return (0, AllFull(numLayers));
        if (w < 1)
            throw new ModelLoadException(j.Path, $"'sliding_window' must be positive or null, got {w}");

        var types = j.StringList("layer_types");
        if (types != null)
        {
            if (types.Count != numLayers)
                throw new ModelLoadException(j.Path, $"'layer_types' has {types.Count} entries for {numLayers} layers");
            if (types.FirstOrDefault(t => t != ModelConfig.SlidingAttention && t != ModelConfig.FullAttention) is { } bad)
                throw new ModelLoadException(j.Path,
                    $"unsupported layer type '{bad}' (supported: {ModelConfig.SlidingAttention}, {ModelConfig.FullAttention})");
            return (w, new ValueList<string>(types.ToArray()));
        }
        if (arch == "GptOssForCausalLM")
            return (w, new ValueList<string>(Enumerable.Range(0, numLayers)
                .Select(i => i % 2 == 0 ? ModelConfig.SlidingAttention : ModelConfig.FullAttention).ToArray()));
        int firstSliding = arch is "Qwen2ForCausalLM" or "Qwen3ForCausalLM" ? j.Int("max_window_layers") ?? 28 : 0;
        return (w, new ValueList<string>(Enumerable.Range(0, numLayers)
            .Select(i => i >= firstSliding ? ModelConfig.SlidingAttention : ModelConfig.FullAttention).ToArray()));
    }

    private static ValueList<string> AllFull(int numLayers) => new(Enumerable.Repeat(ModelConfig.FullAttention, numLayers).ToArray());

    // `original_max_position_embeddings` sits in the rope dict in newer configs and at the top level in Phi-3's.
    private static int OriginalMaxPositions(JsonFields j, JsonFields s, int maxPositions) =>
        s.Int("original_max_position_embeddings") ?? j.Int("original_max_position_embeddings") ?? maxPositions;

    /// <summary>
    /// YaRN (Qwen2.5 long context, gpt-oss, DeepSeek). An explicit `factor` wins over max_position_embeddings /
    /// original_max_position_embeddings, as in transformers; beta_fast / beta_slow are read with Python's `or`,
    /// so 0 means the default too.
    /// </summary>
    private static RopeScaling ReadYarn(JsonFields j, JsonFields s, int maxPositions)
    {
        int original = OriginalMaxPositions(j, s, maxPositions);
        double factor = s.Double("factor") ?? (double)maxPositions / original;
        if (!(factor > 0))
            throw new ModelLoadException(j.Path, $"yarn rope scaling needs a positive 'factor', got {factor}");
        return new RopeScaling("yarn", factor, OriginalMaxPositionEmbeddings: original)
        {
            AttentionFactor = s.Double("attention_factor"),
            BetaFast = s.Double("beta_fast") is { } fast and not 0 ? fast : 32,
            BetaSlow = s.Double("beta_slow") is { } slow and not 0 ? slow : 1,
            Mscale = s.Double("mscale"),
            MscaleAllDim = s.Double("mscale_all_dim"),
            Truncate = s.Bool("truncate") ?? true,
        };
    }

    /// <summary>
    /// LongRoPE (Phi-3.5, Phi-4-mini): two lists of per-frequency divisors. The scaling factor behind the
    /// default attention factor is `factor` when given, else max_position_embeddings / original.
    /// </summary>
    private static RopeScaling ReadLongRope(JsonFields j, JsonFields s, int maxPositions, int rotaryDim)
    {
        int original = OriginalMaxPositions(j, s, maxPositions);
        IReadOnlyList<double> Factors(string key)
        {
            var list = s.DoubleList(key) ?? throw new ModelLoadException(j.Path, $"longrope rope scaling needs '{key}'");
            if (list.Count != rotaryDim / 2)
                throw new ModelLoadException(j.Path, $"longrope '{key}' has {list.Count} entries, the rotary dimension {rotaryDim} needs {rotaryDim / 2}");
            return new ValueList<double>(list.ToArray());
        }
        return new RopeScaling("longrope", s.Double("factor") ?? (double)maxPositions / original, OriginalMaxPositionEmbeddings: original)
        {
            AttentionFactor = s.Double("attention_factor"),
            ShortFactor = Factors("short_factor"),
            LongFactor = Factors("long_factor"),
            ShortMscale = s.Double("short_mscale"),
            LongMscale = s.Double("long_mscale"),
        };
    }
}
