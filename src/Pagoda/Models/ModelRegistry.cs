using Pagoda.Backends;
using Pagoda.Distributed;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>Maps a config's architecture name to the model class that runs it.</summary>
public static class ModelRegistry
{
    /// <summary>
    /// Builds the model for <paramref name="config"/> over its weights; <paramref name="quantization"/>
    /// "int8" turns its Linear weights into weight-only int8 (the dense Llama-style decoders); <paramref name="maxModelLen"/>
    /// (default max_position_embeddings) is the engine's longest sequence, which picks longrope's factor set; a
    /// <paramref name="comm"/> of several ranks builds this rank's tensor-parallel shard.
    /// </summary>
    public static IModel Create(ModelConfig config, WeightStore weights, IBackend backend, string? quantization = null, int? maxModelLen = null,
        ICommunicator? comm = null) => config.Architecture switch
    {
        "LlamaForCausalLM" or "Qwen2ForCausalLM" or "Qwen3ForCausalLM" or "MistralForCausalLM" or "Phi3ForCausalLM" =>
            new DecoderModel(config, weights, backend, quantization == "int8", maxModelLen, comm),
        "OPTForCausalLM" when quantization == null => new OptModel(config, weights, backend, comm),
        "OPTForCausalLM" => throw new ArgumentException($"--quantization {quantization} is not supported for OPT models."),
        "Gemma2ForCausalLM" or "Gemma3ForCausalLM" when quantization == null => new GemmaModel(config, weights, backend, comm),
        "Gemma2ForCausalLM" or "Gemma3ForCausalLM" => throw new ArgumentException($"--quantization {quantization} is not supported for Gemma models."),
        "Qwen3MoeForCausalLM" or "MixtralForCausalLM" or "GptOssForCausalLM" when quantization == null => new MoeModel(config, weights, backend, maxModelLen, comm),
        "Qwen3MoeForCausalLM" or "MixtralForCausalLM" or "GptOssForCausalLM" =>
            throw new ArgumentException($"--quantization {quantization} is not supported for mixture-of-experts models."),
        _ => throw new ModelLoadException(weights.Folder,
            $"unsupported architecture '{config.Architecture}' (supported: {string.Join(", ", ConfigReader.SupportedArchitectures)})"),
    };
}
