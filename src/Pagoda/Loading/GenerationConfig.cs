namespace Pagoda.Loading;

/// <summary>
/// generation_config.json: the model author's sampling defaults and stop ids. vLLM applies these as
/// SamplingParams defaults (`--generation-config auto`); each field is null when the file does not set it.
/// </summary>
public sealed record GenerationConfig
{
    /// <summary>Extra end-of-sequence ids.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Default temperature.</summary>
    public double? Temperature { get; init; }

    /// <summary>Default nucleus probability.</summary>
    public double? TopP { get; init; }

    /// <summary>Default top-k.</summary>
    public int? TopK { get; init; }

    /// <summary>Default min-p.</summary>
    public double? MinP { get; init; }

    /// <summary>Default repetition penalty.</summary>
    public double? RepetitionPenalty { get; init; }

    /// <summary>Default maximum new tokens.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>No file, or a file ignored with `--generation-config vllm`.</summary>
    public static GenerationConfig Empty { get; } = new();

    /// <summary>
    /// vLLM's SamplingParams defaults with this file applied on top (what a request that sets nothing gets
    /// under `--generation-config auto`).
    /// </summary>
    public SamplingParams SamplingDefaults() => new()
    {
        Temperature = Temperature ?? 1.0,
        TopP = TopP ?? 1.0,
        TopK = TopK ?? 0,
        MinP = MinP ?? 0,
        RepetitionPenalty = RepetitionPenalty ?? 1.0,
        MaxTokens = MaxNewTokens ?? 16,
    };

    /// <summary>Reads <paramref name="path"/>, or returns <see cref="Empty"/> when it does not exist.</summary>
    public static GenerationConfig Read(string path)
    {
        if (!File.Exists(path))
            return Empty;
        var j = new JsonFields(path, JsonFile.ReadObject(path));
        return new GenerationConfig
        {
            EosTokenIds = j.IntOrIntList("eos_token_id"),
            Temperature = j.Double("temperature"),
            TopP = j.Double("top_p"),
            TopK = j.Int("top_k"),
            MinP = j.Double("min_p"),
            RepetitionPenalty = j.Double("repetition_penalty"),
            MaxNewTokens = j.Int("max_new_tokens"),
        };
    }
}
