namespace Pagoda.OpenAi;

/// <summary>
/// The sampling fields shared by /v1/completions and /v1/chat/completions (OpenAI's plus vLLM's extras);
/// a field left out takes the model's default (generation_config.json under `--generation-config auto`).
/// </summary>
internal static class SamplingParamsReader
{
    public static SamplingParams Read(RequestFields f, SamplingParams defaults, int? maxTokens, int? defaultMaxTokens)
    {
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
