namespace Pagoda;

/// <summary>What a request's outputs carry while it streams (vLLM's RequestOutputKind).</summary>
public enum RequestOutputKind
{
    /// <summary>Every output holds everything generated so far.</summary>
    Cumulative,
    /// <summary>Every output holds only what is new since the last one.</summary>
    Delta,
    /// <summary>Only the final output is produced.</summary>
    FinalOnly,
}

/// <summary>
/// How to sample one request, with vLLM's field names, defaults and validation messages. Temperature 0
/// means greedy; TopK 0 or -1 and TopP 1 disable those filters.
/// </summary>
public sealed record SamplingParams
{
    /// <summary>Completions to generate for the prompt.</summary>
    public int N { get; init; } = 1;

    /// <summary>Subtracted once from the logit of every token already generated (-2..2).</summary>
    public double PresencePenalty { get; init; }

    /// <summary>Subtracted per occurrence from the logit of every token already generated (-2..2).</summary>
    public double FrequencyPenalty { get; init; }

    /// <summary>Divides positive (multiplies negative) logits of tokens already in the prompt or output.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Softmax temperature; 0 selects the most likely token.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep the smallest set of tokens whose probability sums to at least this.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Keep only the K most likely tokens (0 or -1: all).</summary>
    public int TopK { get; init; }

    /// <summary>Drop tokens less likely than MinP times the most likely one.</summary>
    public double MinP { get; init; }

    /// <summary>Per-request random seed; null draws one from the engine's seeded generator.</summary>
    public long? Seed { get; init; }

    /// <summary>Strings that end generation; the text is cut before them unless IncludeStopStrInOutput.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>Token ids that end generation (reported as the stop reason).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Keep the matched stop string at the end of the text.</summary>
    public bool IncludeStopStrInOutput { get; init; }

    /// <summary>Keep generating past end-of-sequence tokens.</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Maximum tokens to generate (null: up to the model's context length).</summary>
    public int? MaxTokens { get; init; } = 16;

    /// <summary>End-of-sequence and stop tokens are banned until this many tokens exist.</summary>
    public int MinTokens { get; init; }

    /// <summary>Return this many top logprobs per generated token, plus the sampled one (null: none).</summary>
    public int? Logprobs { get; init; }

    /// <summary>Return this many top logprobs per prompt token (null: none).</summary>
    public int? PromptLogprobs { get; init; }

    /// <summary>Leave special tokens out of the output text.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>Put spaces between special tokens when they are kept in the text.</summary>
    public bool SpacesBetweenSpecialTokens { get; init; } = true;

    /// <summary>Added to the logits of the given token ids.</summary>
    public IReadOnlyDictionary<int, double>? LogitBias { get; init; }

    /// <summary>Only these token ids may be sampled.</summary>
    public IReadOnlyList<int>? AllowedTokenIds { get; init; }

    /// <summary>Words that must not be generated (their last token is banned after the rest of the word).</summary>
    public IReadOnlyList<string>? BadWords { get; init; }

    /// <summary>Cumulative, delta or final-only outputs while streaming.</summary>
    public RequestOutputKind OutputKind { get; init; } = RequestOutputKind.Cumulative;

    /// <summary>Constrains the output to a JSON schema, regex, choice or grammar (vLLM's structured_outputs).</summary>
    public StructuredOutputsParams? StructuredOutputs { get; init; }

    /// <summary>
    /// Disaggregated prefill (vLLM's kv_transfer_params, which it carries in extra_args): a prefill whose KV a decode
    /// instance will pull, or a decode whose prompt's KV is pulled from the prefill instance.
    /// </summary>
    public KvTransferParams? KvTransferParams { get; init; }

    /// <summary>Below this temperature sampling is greedy, as in vLLM.</summary>
    public const double GreedyEpsilon = 1e-5;

    /// <summary>Whether sampling reduces to argmax.</summary>
    public bool IsGreedy => Temperature < GreedyEpsilon;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field, in vLLM's words.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException(message);
        }
        StructuredOutputs?.Validate();
        KvTransferParams?.Validate();
        Check(KvTransferParams is not { IsActive: true } || N == 1, $"kv_transfer_params needs n = 1, got {N}.");
        Check(N >= 1, $"n must be at least 1, got {N}.");
        Check(PresencePenalty is >= -2 and <= 2, $"presence_penalty must be in [-2, 2], got {PresencePenalty}.");
        Check(FrequencyPenalty is >= -2 and <= 2, $"frequency_penalty must be in [-2, 2], got {FrequencyPenalty}.");
        Check(RepetitionPenalty > 0 && double.IsFinite(RepetitionPenalty), $"repetition_penalty must be greater than zero, got {RepetitionPenalty}.");
        Check(Temperature >= 0 && double.IsFinite(Temperature), $"temperature must be non-negative, got {Temperature}.");
        Check(TopP > 0 && TopP <= 1, $"top_p must be in (0, 1], got {TopP}.");
        Check(TopK >= -1, $"top_k must be 0 (disable), or at least 1, got {TopK}.");
        Check(MinP is >= 0 and <= 1, $"min_p must be in [0, 1], got {MinP}.");
        Check(MaxTokens is null or >= 1, $"max_tokens must be at least 1, got {MaxTokens}.");
        Check(MinTokens >= 0, $"min_tokens must be greater than or equal to 0, got {MinTokens}.");
        Check(MaxTokens is null || MinTokens <= MaxTokens, $"min_tokens must be less than or equal to max_tokens={MaxTokens}, got {MinTokens}.");
        Check(Logprobs is null or >= 0, $"logprobs must be non-negative, got {Logprobs}.");
        Check(PromptLogprobs is null or >= 0, $"prompt_logprobs must be non-negative, got {PromptLogprobs}.");
        Check(!Stop.Any(string.IsNullOrEmpty), "stop cannot contain an empty string.");
        Check(AllowedTokenIds is null || AllowedTokenIds.Count > 0, "allowed_token_ids is not None and empty!");
        Check(LogitBias is null || LogitBias.Values.All(double.IsFinite), "logit_bias values must be finite numbers.");
    }

    /// <summary>Checks token ids against the vocabulary (the engine knows its size).</summary>
    public void ValidateTokenIds(int vocabSize)
    {
        foreach (int id in AllowedTokenIds ?? [])
        {
            if ((uint)id >= (uint)vocabSize)
                throw new ArgumentException($"allowed_token_ids contains out-of-vocab token id {id} (vocabulary size {vocabSize}).");
        }
        foreach (int id in LogitBias?.Keys ?? Enumerable.Empty<int>())
        {
            if ((uint)id >= (uint)vocabSize)
                throw new ArgumentException($"token_id {id} in logit_bias is out of vocabulary (size {vocabSize}).");
        }
    }
}
