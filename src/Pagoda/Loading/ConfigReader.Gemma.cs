using System.Text.Json;
using Pagoda.Backends;

namespace Pagoda.Loading;

// Gemma 2 and Gemma 3 (text): config.json in the classic style (`rope_theta`, Gemma 3's `rope_local_base_freq` and
// `rope_scaling`, `sliding_window_pattern`) and the newer one (`rope_parameters`, per layer type for Gemma 3, and
// `layer_types`). Defaults are transformers' Gemma2Config / Gemma3TextConfig defaults.
public static partial class ConfigReader
{
    private static ModelConfig ReadGemma(JsonElement root, JsonFields j, string arch, DType? dtype)
    {
        bool gemma3 = arch == "Gemma3ForCausalLM";
        int hidden = j.RequiredInt("hidden_size");
        int heads = j.RequiredInt("num_attention_heads");
        int layers = j.RequiredInt("num_hidden_layers");
        // Gemma's MLP reads `hidden_activation` (Hub configs also carry a `hidden_act` that it ignores).
        string act = j.String("hidden_activation") ?? "gelu_pytorch_tanh";
        if (act != "gelu_pytorch_tanh")
            throw new ModelLoadException(j.Path, $"unsupported hidden_activation '{act}' for {arch} (supported: gelu_pytorch_tanh)");
        if (j.Bool("attention_bias") == true)
            throw new ModelLoadException(j.Path, $"{arch} with attention_bias=true is not supported");
        if (j.Bool("use_bidirectional_attention") == true)
            throw new ModelLoadException(j.Path, $"{arch} with use_bidirectional_attention=true (an encoder) is not supported");

        int headDim = j.Int("head_dim") ?? 256, maxPositions = j.Int("max_position_embeddings") ?? (gemma3 ? 131072 : 8192);
        (double, RopeScaling?) Plain() { var (t, s, _) = ReadRope(j, headDim, maxPositions); return (t, s); }
        var ((theta, scaling), (localTheta, localScaling)) = gemma3 ? Gemma3Rope(root, j, headDim, maxPositions) : (Plain(), Plain());
        return new ModelConfig
        {
            Architecture = arch,
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = j.Int("num_key_value_heads") ?? 4,
            HeadDim = headDim,
            IntermediateSize = j.RequiredInt("intermediate_size"),
            VocabSize = j.RequiredInt("vocab_size"),
            MaxPositionEmbeddings = maxPositions,
            NormEps = j.Double("rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = j.Bool("tie_word_embeddings") ?? true,
            QkNorm = gemma3,
            HiddenAct = act,
            DType = dtype,
            BosTokenId = j.Int("bos_token_id"),
            EosTokenIds = j.IntOrIntList("eos_token_id"),
            SlidingWindow = j.Int("sliding_window") ?? 4096,
            LayerTypes = LayerTypes(root, j, layers, gemma3),
            Gemma = new GemmaConfig
            {
                QueryPreAttnScalar = j.Double("query_pre_attn_scalar") ?? 256,
                // Gemma 2 caps by default; an explicit null (Gemma 3's default) turns a cap off.
                AttnLogitSoftcapping = SoftCap(root, j, "attn_logit_softcapping", gemma3 ? 0 : 50.0),
                FinalLogitSoftcapping = SoftCap(root, j, "final_logit_softcapping", gemma3 ? 0 : 30.0),
                LocalRopeTheta = localTheta,
                LocalRopeScaling = localScaling,
            },
        };
    }

    private static double SoftCap(JsonElement root, JsonFields j, string key, double absent)
    {
        if (!root.TryGetProperty(key, out _))
            return absent;
        double cap = j.Double(key) ?? 0;
        return cap >= 0 ? cap : throw new ModelLoadException(j.Path, $"'{key}' must not be negative");
    }

    // `layer_types` when given; else the old fixed pattern: every pattern-th layer (1-based) is global.
    private static string[] LayerTypes(JsonElement root, JsonFields j, int layers, bool gemma3)
    {
        if (root.TryGetProperty("layer_types", out var list) && list.ValueKind != JsonValueKind.Null)
        {
            var types = list.ValueKind == JsonValueKind.Array
                ? list.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : "").ToArray()
                : [];
            if (types.Length != layers || types.Any(t => t is not (ModelConfig.SlidingAttention or ModelConfig.FullAttention)))
                throw new ModelLoadException(j.Path,
                    $"'layer_types' must list {layers} entries, each '{ModelConfig.SlidingAttention}' or '{ModelConfig.FullAttention}'");
            return types;
        }
        int pattern = gemma3 ? j.Int("sliding_window_pattern") ?? j.Int("_sliding_window_pattern") ?? 6 : 2;
        return Enumerable.Range(0, layers)
            .Select(i => (i + 1) % pattern != 0 ? ModelConfig.SlidingAttention : ModelConfig.FullAttention).ToArray();
    }

    // Gemma 3's two RoPEs, (global, local). Newer configs nest one rope_parameters object per layer type; classic ones
    // give the global base as rope_theta (default 1e6) with rope_scaling, and the local base as rope_local_base_freq
    // (default 1e4, never scaled). Each is parsed by ReadRope from a small object in the classic-or-newer shape it reads.
    private static ((double, RopeScaling?) Global, (double, RopeScaling?) Local) Gemma3Rope(JsonElement root, JsonFields j, int headDim, int maxPositions)
    {
        JsonElement? Get(JsonElement o, string key) =>
            o.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
        double globalTheta = j.Double("rope_theta") ?? 1_000_000.0;
        double localTheta = j.Double("rope_local_base_freq") ?? 10_000.0;
        var parameters = Get(root, "rope_parameters");
        if (parameters is { ValueKind: JsonValueKind.Object } p &&
            (p.TryGetProperty(ModelConfig.FullAttention, out _) || p.TryGetProperty(ModelConfig.SlidingAttention, out _)))
        {
            var global = Get(p, ModelConfig.FullAttention);
            var local = Get(p, ModelConfig.SlidingAttention);
            return (Rope(j, headDim, maxPositions, ("rope_theta", globalTheta), ("rope_parameters", global), ("rope_scaling", Get(root, "rope_scaling"))),
                    Rope(j, headDim, maxPositions, ("rope_theta", localTheta), ("rope_parameters", local)));
        }
        return (Rope(j, headDim, maxPositions, ("rope_theta", globalTheta), ("rope_parameters", parameters), ("rope_scaling", Get(root, "rope_scaling"))),
                Rope(j, headDim, maxPositions, ("rope_theta", localTheta)));
    }

    private static (double, RopeScaling?) Rope(JsonFields j, int headDim, int maxPositions, params (string Key, object? Value)[] fields)
    {
        var obj = fields.Where(f => f.Value != null).ToDictionary(f => f.Key, f => f.Value);
        // rope_parameters wins over rope_scaling in ReadRope; a per-type object without a base takes the default one.
        var (theta, scaling, _) = ReadRope(new JsonFields(j.Path, JsonSerializer.SerializeToElement(obj)), headDim, maxPositions);
        return (theta, scaling);
    }
}
