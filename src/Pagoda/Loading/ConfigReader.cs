using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>
/// Reads config.json in both Hub styles: classic (`rope_theta`, `rope_scaling`, `torch_dtype`) and newer
/// (`rope_parameters`, `dtype`). Missing or ill-typed fields are errors that name the file and the key.
/// </summary>
public static partial class ConfigReader
{
    /// <summary>Architectures this engine can run.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures =
        ["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "OPTForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM",
            "Gemma2ForCausalLM", "Gemma3ForCausalLM", .. MoeConfig.Architectures];

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    public static ModelConfig Read(string path)
    {
        var root = JsonFile.ReadObject(path);
        var j = new JsonFields(path, root);

        string arch = j.FirstString("architectures")
            ?? throw new ModelLoadException(path, "missing 'architectures'");
        if (!SupportedArchitectures.Contains(arch))
            throw new ModelLoadException(path,
                $"unsupported architecture '{arch}' (supported: {string.Join(", ", SupportedArchitectures)})");

        DType? dtype = null;
        string? dtypeName = j.String("dtype") ?? j.String("torch_dtype");
        if (dtypeName != null)
            dtype = DTypes.ParseTorch(dtypeName) ?? throw new ModelLoadException(path,
                $"unsupported dtype '{dtypeName}' (supported: float32, float16, bfloat16)");

        var config = arch switch
        {
            "OPTForCausalLM" => ReadOpt(j, arch, dtype),
            "Gemma2ForCausalLM" or "Gemma3ForCausalLM" => ReadGemma(root, j, arch, dtype),
            _ => ReadDecoder(j, arch, dtype),
        };
        return config with { QuantizationMethod = ReadQuantizationMethod(j) };
    }

    // A quantized checkpoint's config.json names its format in quantization_config.quant_method (mxfp4, fp8, awq, gptq, ...).
    private static string? ReadQuantizationMethod(JsonFields j)
    {
        if (j.Object("quantization_config") is not { } q)
            return null;
        return q.String("quant_method") ?? throw new ModelLoadException(j.Path, "'quantization_config' has no 'quant_method'");
    }

    /// <summary>
    /// The one-line reason a checkpoint quantized with <paramref name="method"/> (quantization_config.quant_method)
    /// cannot be loaded: no quantized format is supported, only float32 / float16 / bfloat16 weights.
    /// </summary>
    public static string UnsupportedQuantization(string method) =>
        $"{QuantizationName(method)}-quantized checkpoints are not supported (quantization_config.quant_method '{method}'); " +
        "use an unquantized (bfloat16) copy of the model, or --load-format dummy for random unquantized weights of its shapes";

    private static string QuantizationName(string method) => method.ToLowerInvariant() switch
    {
        "mxfp4" => "MXFP4",
        "fp8" => "FP8",
        "awq" => "AWQ",
        "gptq" => "GPTQ",
        "bitsandbytes" => "bitsandbytes",
        _ => method,
    };

    private static ModelConfig ReadDecoder(JsonFields j, string arch, DType? dtype)
    {
        int hidden = j.RequiredInt("hidden_size");
        int heads = j.RequiredInt("num_attention_heads");
        string act = j.String("hidden_act") ?? "silu";
        if (act != "silu")
            throw new ModelLoadException(j.Path, $"unsupported hidden_act '{act}' for {arch} (supported: silu)");
        int numLayers = j.RequiredInt("num_hidden_layers"), headDim = j.Int("head_dim") ?? hidden / heads;
        int maxPositions = j.Int("max_position_embeddings") ?? 2048;
        var (theta, scaling, partialRotary) = ReadRope(j, headDim, maxPositions);
        var (window, layerTypes) = ReadSlidingWindow(j, arch, numLayers);
        // Only Llama's, Qwen3's, Qwen3-MoE's and gpt-oss's config classes have `attention_bias` (and only Llama's
        // `mlp_bias`); Mistral, Phi-3 and Mixtral have no biases whatever stray keys their config.json carries.
        bool attentionBias = arch is "LlamaForCausalLM" or "Qwen3ForCausalLM" or "Qwen3MoeForCausalLM" or "GptOssForCausalLM"
            && (j.Bool("attention_bias") ?? false);
        return new ModelConfig
        {
            Architecture = arch,
            HiddenSize = hidden,
            NumLayers = numLayers,
            NumHeads = heads,
            NumKvHeads = j.Int("num_key_value_heads") ?? heads,
            HeadDim = headDim,
            IntermediateSize = j.RequiredInt("intermediate_size"),
            VocabSize = j.RequiredInt("vocab_size"),
            MaxPositionEmbeddings = maxPositions,
            NormEps = j.Double("rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = j.Bool("tie_word_embeddings") ?? false,
            QkvBias = arch == "Qwen2ForCausalLM" || attentionBias,
            OutputBias = arch is "LlamaForCausalLM" or "Qwen3MoeForCausalLM" or "GptOssForCausalLM" && attentionBias,
            MlpBias = arch == "LlamaForCausalLM" && (j.Bool("mlp_bias") ?? false),
            QkNorm = arch is "Qwen3ForCausalLM" or "Qwen3MoeForCausalLM",
            HiddenAct = act,
            DType = dtype,
            BosTokenId = j.Int("bos_token_id"),
            EosTokenIds = j.IntOrIntList("eos_token_id"),
            SlidingWindow = window,
            LayerTypes = layerTypes,
            PartialRotaryFactor = partialRotary,
            Moe = MoeConfig.Read(j, arch, numLayers),
        };
    }

    private static ModelConfig ReadOpt(JsonFields j, string arch, DType? dtype)
    {
        int hidden = j.RequiredInt("hidden_size");
        int heads = j.RequiredInt("num_attention_heads");
        string act = j.String("activation_function") ?? "relu";
        if (act != "relu")
            throw new ModelLoadException(j.Path, $"unsupported activation_function '{act}' for OPT (supported: relu)");
        if ((j.Int("word_embed_proj_dim") ?? hidden) != hidden)
            throw new ModelLoadException(j.Path, "OPT with word_embed_proj_dim != hidden_size (project_in/out) is not supported");
        if (!(j.Bool("do_layer_norm_before") ?? true))
            throw new ModelLoadException(j.Path, "OPT with do_layer_norm_before=false (post-LayerNorm) is not supported");
        if (!(j.Bool("enable_bias") ?? true) || !(j.Bool("layer_norm_elementwise_affine") ?? true))
            throw new ModelLoadException(j.Path, "OPT without biases or LayerNorm affine parameters is not supported");
        return new ModelConfig
        {
            Architecture = arch,
            HiddenSize = hidden,
            NumLayers = j.RequiredInt("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = heads,
            HeadDim = hidden / heads,
            IntermediateSize = j.RequiredInt("ffn_dim"),
            VocabSize = j.RequiredInt("vocab_size"),
            MaxPositionEmbeddings = j.Int("max_position_embeddings") ?? 2048,
            NormEps = 1e-5,
            TieWordEmbeddings = j.Bool("tie_word_embeddings") ?? true,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            HiddenAct = act,
            DType = dtype,
            BosTokenId = j.Int("bos_token_id"),
            EosTokenIds = j.IntOrIntList("eos_token_id"),
            LayerTypes = AllFull(j.RequiredInt("num_hidden_layers")),
        };
    }

    private static (double Theta, RopeScaling? Scaling, double PartialRotary) ReadRope(JsonFields j, int headDim, int maxPositions)
    {
        // Newer configs nest everything in rope_parameters; classic ones split theta and scaling, and keep
        // partial_rotary_factor and original_max_position_embeddings (Phi-3) at the top level.
        JsonFields? p = j.Object("rope_parameters");
        double theta = p?.Double("rope_theta") ?? j.Double("rope_theta") ?? 10000.0;
        double partial = p?.Double("partial_rotary_factor") ?? j.Double("partial_rotary_factor") ?? 1.0;
        int rotaryDim = (int)(headDim * partial);
        if (!(partial > 0 && partial <= 1) || rotaryDim < 2 || rotaryDim % 2 != 0)
            throw new ModelLoadException(j.Path, $"partial_rotary_factor {partial} must rotate an even, non-zero part of head_dim {headDim}");
        JsonFields? s = p ?? j.Object("rope_scaling");
        if (s == null)
            return (theta, null, partial);
        string type = s.String("rope_type") ?? s.String("type") ?? "default";
        RopeScaling? scaling = type switch
        {
            "default" => null,
            "linear" => new RopeScaling("linear", s.Double("factor") ?? 1.0),
            "llama3" => new RopeScaling("llama3",
                s.Double("factor") ?? throw new ModelLoadException(j.Path, "llama3 rope scaling needs 'factor'"),
                s.Double("low_freq_factor") ?? 1.0,
                s.Double("high_freq_factor") ?? 4.0,
                s.Int("original_max_position_embeddings") ?? 8192),
            "yarn" => ReadYarn(j, s, maxPositions),
            "longrope" => ReadLongRope(j, s, maxPositions, rotaryDim),
            _ => throw new ModelLoadException(j.Path, $"unsupported rope type '{type}' (supported: default, linear, llama3, yarn, longrope)"),
        };
        return (theta, scaling, partial);
    }
}
