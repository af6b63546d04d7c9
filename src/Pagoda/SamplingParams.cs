using Pagoda.Loading;

namespace Pagoda;

/// <summary>
/// How to sample one request, with vLLM's field names, defaults and validation. Temperature 0 means
/// greedy; TopK 0 or -1 and TopP 1 disable those filters.
/// </summary>
public sealed record SamplingParams
{
    /// <summary>Softmax temperature; 0 selects the most likely token.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep the smallest set of tokens whose probability sums to at least this.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Keep only the K most likely tokens (0 or -1: all).</summary>
    public int TopK { get; init; }

    /// <summary>Drop tokens less likely than MinP times the most likely one.</summary>
    public double MinP { get; init; }

    /// <summary>Divides positive (multiplies negative) logits of tokens already in the prompt or output.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Per-request random seed; null draws one from the engine's seeded generator.</summary>
    public long? Seed { get; init; }

    /// <summary>Maximum tokens to generate (null: up to the model's context length).</summary>
    public int? MaxTokens { get; init; } = 16;

    /// <summary>Token ids that end generation (reported as the stop reason).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Keep generating past end-of-sequence tokens.</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Return this many top logprobs per generated token (null: none).</summary>
    public int? Logprobs { get; init; }

    /// <summary>Return this many top logprobs per prompt token (null: none).</summary>
    public int? PromptLogprobs { get; init; }

    /// <summary>Leave special tokens out of the output text.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>Below this temperature sampling is greedy, as in vLLM.</summary>
    public const double GreedyEpsilon = 1e-5;

    /// <summary>Whether sampling reduces to argmax.</summary>
    public bool IsGreedy => Temperature < GreedyEpsilon;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException(message);
        }
        Check(Temperature >= 0 && double.IsFinite(Temperature), $"temperature must be non-negative, got {Temperature}.");
        Check(TopP > 0 && TopP <= 1, $"top_p must be in (0, 1], got {TopP}.");
        Check(TopK >= -1, $"top_k must be -1 (disable), 0 (disable) or at least 1, got {TopK}.");
        Check(MinP >= 0 && MinP <= 1, $"min_p must be in [0, 1], got {MinP}.");
        Check(RepetitionPenalty > 0 && double.IsFinite(RepetitionPenalty), $"repetition_penalty must be greater than zero, got {RepetitionPenalty}.");
        Check(MaxTokens is null or >= 1, $"max_tokens must be at least 1, got {MaxTokens}.");
        Check(Logprobs is null or >= 0, $"logprobs must be non-negative, got {Logprobs}.");
        Check(PromptLogprobs is null or >= 0, $"prompt_logprobs must be non-negative, got {PromptLogprobs}.");
    }

    /// <summary>
    /// vLLM's defaults with the model's generation_config.json applied on top (what a request that sets
    /// nothing gets under `--generation-config auto`).
    /// </summary>
    public static SamplingParams FromGenerationConfig(GenerationConfig g) => new SamplingParams() with
    {
        Temperature = g.Temperature ?? 1.0,
        TopP = g.TopP ?? 1.0,
        TopK = g.TopK ?? 0,
        MinP = g.MinP ?? 0,
        RepetitionPenalty = g.RepetitionPenalty ?? 1.0,
        MaxTokens = g.MaxNewTokens ?? 16,
    };
}
