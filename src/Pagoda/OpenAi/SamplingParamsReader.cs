using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.OpenAi;

/// <summary>
/// The sampling fields shared by /v1/completions and /v1/chat/completions (OpenAI's plus vLLM's extras);
/// a field left out takes the model's default (generation_config.json under `--generation-config auto`).
/// </summary>
public static class SamplingParamsReader
{
    /// <summary>OpenAI's ceiling on `n`: more would let one request occupy the whole engine.</summary>
    public const int MaxN = 128;

    /// <summary>vLLM's default max_logprobs: the most logprobs (or prompt_logprobs) a request may ask for.</summary>
    public const int MaxLogprobs = 20;

    /// <summary>Stop strings are scanned on every token, so their number is bounded.</summary>
    public const int MaxStopStrings = 256;

    /// <summary>
    /// The prompt tokenized and checked (length, vocabulary), with vLLM's 400 for a request whose own max_tokens
    /// does not fit the context after it (clients match this text); a default max_tokens is clipped instead.
    /// The server and run-batch admit every prompt through here.
    /// </summary>
    public static PromptInput Tokenize(LLMEngine engine, PromptInput prompt, int? requestedMaxTokens)
    {
        int[] ids = engine.ProcessPrompt(prompt);
        if (requestedMaxTokens is int max && (long)ids.Length + max > engine.MaxModelLen)
            throw new OpenAiRequestException(
                $"This model's maximum context length is {engine.MaxModelLen} tokens. However, you requested {(long)ids.Length + max} tokens " +
                $"({ids.Length} in the messages, {max} in the completion). Please reduce the length of the messages or completion.", "max_tokens");
        return prompt with { TokenIds = ids };
    }

    internal static SamplingParams Read(RequestFields f, SamplingParams defaults, int? maxTokens, int? defaultMaxTokens)
    {
        if (f.Int("n") is > MaxN)
            throw new OpenAiRequestException($"n must be at most {MaxN}, got {f.Int("n")}.", "n");
        if (f.Int("prompt_logprobs") is > MaxLogprobs)
            throw new OpenAiRequestException($"prompt_logprobs must be at most {MaxLogprobs}, got {f.Int("prompt_logprobs")}.", "prompt_logprobs");
        if (f.Strings("stop") is { Count: > MaxStopStrings } stops)
            throw new OpenAiRequestException($"At most {MaxStopStrings} stop strings are allowed, got {stops.Count}.", "stop");
        if (f.Strings("bad_words") is { Count: > MaxStopStrings } bad)
            throw new OpenAiRequestException($"At most {MaxStopStrings} bad_words are allowed, got {bad.Count}.", "bad_words");
        if (f.Has("stream_options") && f.Body["stream_options"] is not JsonObject)
            throw new OpenAiRequestException("'stream_options' must be an object.", "stream_options");
        var p = defaults with
        {
            N = f.Int("n") ?? 1,
            Temperature = f.Double("temperature") ?? defaults.Temperature,
            TopP = f.Double("top_p") ?? defaults.TopP,
            TopK = f.Int("top_k") ?? defaults.TopK,
            MinP = f.Double("min_p") ?? defaults.MinP,
            PresencePenalty = f.Double("presence_penalty") ?? 0,
            FrequencyPenalty = f.Double("frequency_penalty") ?? 0,
            RepetitionPenalty = f.Double("repetition_penalty") ?? defaults.RepetitionPenalty,
            Seed = f.Long("seed"),
            Stop = f.Strings("stop") ?? [],
            StopTokenIds = f.Ints("stop_token_ids") ?? [],
            IncludeStopStrInOutput = f.Bool("include_stop_str_in_output") ?? false,
            IgnoreEos = f.Bool("ignore_eos") ?? false,
            // The server's default is generation_config's max_new_tokens, else "until the context is full".
            MaxTokens = maxTokens ?? defaultMaxTokens,
            MinTokens = f.Int("min_tokens") ?? 0,
            SkipSpecialTokens = f.Bool("skip_special_tokens") ?? true,
            SpacesBetweenSpecialTokens = f.Bool("spaces_between_special_tokens") ?? true,
            LogitBias = f.LogitBias(),
            AllowedTokenIds = f.Ints("allowed_token_ids"),
            BadWords = f.Strings("bad_words"),
            PromptLogprobs = f.Int("prompt_logprobs"),
            StructuredOutputs = StructuredOutputsReader.Read(f),
            KvTransferParams = KvTransferParamsJson.Read(f.Body),
        };
        try
        {
            p.Validate();
        }
        catch (ArgumentException e) when (e is not OpenAiRequestException)
        {
            throw new OpenAiRequestException(e.Message);
        }
        return p;
    }
}
