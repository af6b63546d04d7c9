using System.Text.Json;

namespace Pagoda.SpecDecode;

/// <summary>
/// vLLM's SpeculativeConfig (`--speculative-config`): how draft tokens are proposed for the target to verify. Two
/// methods: "ngram" (prompt lookup: the tokens that followed the latest context suffix's earlier occurrence) and
/// "draft_model" (a smaller model with the target's tokenizer, in the same engine). The same JSON keys and defaults.
/// </summary>
public sealed record SpeculativeConfig
{
    /// <summary>The keys read.</summary>
    public static readonly string[] Fields =
    [
        "method", "model", "num_speculative_tokens", "prompt_lookup_min", "prompt_lookup_max", "disable_by_batch_size",
        "draft_tensor_parallel_size", "quantization", "revision",
    ];

    /// <summary>vLLM's other methods, refused by name.</summary>
    private static readonly string[] OtherMethods = ["eagle", "eagle3", "medusa", "mlp_speculator", "deepseek_mtp", "mtp", "suffix", "ngram-eagle"];

    /// <summary>"ngram" or "draft_model".</summary>
    public string Method { get; init; } = "ngram";

    /// <summary>The draft model's folder or repo id ("draft_model" only).</summary>
    public string? Model { get; init; }

    /// <summary>The draft model's revision (a repo id's branch, tag or commit).</summary>
    public string? Revision { get; init; }

    /// <summary>Drafts proposed per step at most (k).</summary>
    public int NumSpeculativeTokens { get; init; }

    /// <summary>The shortest context suffix an n-gram match may have.</summary>
    public int PromptLookupMin { get; init; }

    /// <summary>The longest context suffix matched (longer matches are preferred).</summary>
    public int PromptLookupMax { get; init; }

    /// <summary>No drafts in a step once this many requests are running (vLLM's disable_by_batch_size); null: no limit.</summary>
    public int? DisableByBatchSize { get; init; }

    /// <summary>
    /// Whether proposal lengths adapt to acceptance and step cost (<see cref="SpecDecoder"/>); off, every proposal is
    /// verified at full length, as vLLM does. Not a JSON key: tests turn it off to verify drafts whatever the timings.
    /// </summary>
    internal bool AdaptiveLengths { get; init; } = true;

    /// <summary>Whether drafts come from a draft model.</summary>
    public bool UsesDraftModel => Method == "draft_model";

    private const string Flag = "--speculative-config";

    /// <summary>Reads vLLM's JSON form; an unknown key, a wrong type or a bad value is an <see cref="ArgumentException"/> of one line.</summary>
    public static SpeculativeConfig Parse(string json)
    {
        var config = JsonFlag.Read(Flag, json, "{\"method\": \"ngram\", \"num_speculative_tokens\": 3, \"prompt_lookup_max\": 4}",
            new SpeculativeConfig { Method = "" }, With);
        // vLLM: a model of "ngram" (its old spelling) is the method; any other model is a draft model.
        if (config.Method == "" && config.Model is "ngram" or "[ngram]")
            config = config with { Method = "ngram", Model = null };
        else if (config.Method == "")
            config = config with { Method = config.Model != null ? "draft_model" : throw new ArgumentException($"{Flag}: give a method (ngram) or a draft model.") };
        // vLLM's defaults: both lookup bounds 5 when neither is given, else the one given for the other.
        config = (config.PromptLookupMin, config.PromptLookupMax) switch
        {
            (0, 0) => config with { PromptLookupMin = 5, PromptLookupMax = 5 },
            (0, var max) => config with { PromptLookupMin = max },
            (var min, 0) => config with { PromptLookupMax = min },
            _ => config,
        };
        config.Validate();
        return config;
    }

    /// <summary>Throws <see cref="ArgumentException"/> for a combination that cannot run.</summary>
    public void Validate()
    {
        if (OtherMethods.Contains(Method))
            throw new ArgumentException($"{Flag}: method '{Method}' is not supported (supported: ngram, draft_model).");
        if (Method is not ("ngram" or "draft_model"))
            throw new ArgumentException($"{Flag}: unknown method '{Method}' (supported: ngram, draft_model).");
        if (NumSpeculativeTokens < 1)
            throw new ArgumentException($"{Flag}: num_speculative_tokens is required and must be at least 1.");
        if (NumSpeculativeTokens > 16)
            throw new ArgumentException($"{Flag}: num_speculative_tokens must be at most 16, got {NumSpeculativeTokens}.");
        if (UsesDraftModel && string.IsNullOrEmpty(Model))
            throw new ArgumentException($"{Flag}: method draft_model needs a model (the draft's folder or repo id).");
        if (Method == "ngram" && Model != null)
            throw new ArgumentException($"{Flag}: method ngram takes no model.");
        if (Method == "ngram" && (PromptLookupMin < 1 || PromptLookupMax < PromptLookupMin))
            throw new ArgumentException($"{Flag}: prompt_lookup_min ({PromptLookupMin}) must be at least 1 and at most prompt_lookup_max ({PromptLookupMax}).");
        if (DisableByBatchSize is < 2)
            throw new ArgumentException($"{Flag}: disable_by_batch_size must be at least 2, got {DisableByBatchSize}.");
    }

    private static SpeculativeConfig With(SpeculativeConfig c, string key, JsonElement v) => key switch
    {
        "method" => c with { Method = JsonFlag.String(Flag, key, v, nullable: true) ?? "" },
        "model" => c with { Model = JsonFlag.String(Flag, key, v, nullable: true) },
        "revision" => c with { Revision = JsonFlag.String(Flag, key, v, nullable: true) },
        "num_speculative_tokens" => c with { NumSpeculativeTokens = JsonFlag.Int(Flag, key, v) },
        "prompt_lookup_min" => c with { PromptLookupMin = Positive(key, v) },
        "prompt_lookup_max" => c with { PromptLookupMax = Positive(key, v) },
        "disable_by_batch_size" => c with { DisableByBatchSize = v.ValueKind == JsonValueKind.Null ? null : JsonFlag.Int(Flag, key, v) },
        "draft_tensor_parallel_size" => v.ValueKind == JsonValueKind.Null || JsonFlag.Int(Flag, key, v) == 1
            ? c : throw new ArgumentException($"{Flag}: draft_tensor_parallel_size must be 1 (the draft runs beside the target)."),
        "quantization" => v.ValueKind == JsonValueKind.Null
            ? c : throw new ArgumentException($"{Flag}: quantization of the draft is not supported; leave it out."),
        _ => throw new ArgumentException($"{Flag}: unknown key '{key}' (supported: {string.Join(", ", Fields)})."),
    };

    private static int Positive(string key, JsonElement v) =>
        JsonFlag.Int(Flag, key, v) is var n and >= 1 ? n : throw new ArgumentException($"{Flag}: {key} must be at least 1, got {v.GetRawText()}.");
}
