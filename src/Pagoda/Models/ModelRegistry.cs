using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>Maps a config's architecture name to the model class that runs it.</summary>
public static class ModelRegistry
{
    /// <summary>Builds the model for <paramref name="config"/> over its weights.</summary>
    public static IModel Create(ModelConfig config, WeightStore weights, IBackend backend) => config.Architecture switch
    {
        "LlamaForCausalLM" or "Qwen2ForCausalLM" or "Qwen3ForCausalLM" => new DecoderModel(config, weights, backend),
        "OPTForCausalLM" => new OptModel(config, weights, backend),
        _ => throw new ModelLoadException(weights.Folder,
            $"unsupported architecture '{config.Architecture}' (supported: {string.Join(", ", ConfigReader.SupportedArchitectures)})"),
    };
}
