namespace Pagoda.Loading;

/// <summary>
/// A Hugging Face model folder: config.json (required), generation_config.json (optional), weights and
/// tokenizer files; errors name the path.
/// </summary>
public sealed record ModelFolder(string Path, ModelConfig Config, GenerationConfig GenerationConfig)
{
    /// <summary>Reads the folder's configs (weights and tokenizer are opened by their own loaders).</summary>
    public static ModelFolder Open(string model)
    {
        string path = System.IO.Path.GetFullPath(model);
        if (!Directory.Exists(path))
            throw new ModelLoadException(model, File.Exists(path)
                ? "is a file; expected a model folder holding config.json"
                : "model folder not found");
        var config = ConfigReader.Read(System.IO.Path.Combine(path, "config.json"));
        var generation = GenerationConfig.Read(System.IO.Path.Combine(path, "generation_config.json"));
        return new ModelFolder(path, config, generation);
    }
}
