using System.CommandLine;

namespace Pagoda.Cli.Commands;

/// <summary>Sampling flags; each one given overrides the model's generation_config.json default.</summary>
internal sealed class SamplingOptions
{
    // The CLI answers in full sentences by default; vLLM's SamplingParams default (16) stays in the library.
    public const int DefaultMaxTokens = 64;

    private readonly Option<double?> _temperature = new("--temperature") { Description = "0 = greedy." };
    private readonly Option<double?> _topP = new("--top-p");
    private readonly Option<int?> _topK = new("--top-k") { Description = "0 or -1 = off." };
    private readonly Option<double?> _minP = new("--min-p");
    private readonly Option<double?> _repetitionPenalty = new("--repetition-penalty");
    private readonly Option<int?> _maxTokens = new("--max-tokens") { Description = $"Tokens to generate (default: generation_config's max_new_tokens, else {DefaultMaxTokens})." };
    private readonly Option<long?> _seed = new("--seed");
    private readonly Option<int?> _logprobs = new("--logprobs") { Description = "Return the top K logprobs of each generated token." };
    private readonly Option<int?> _promptLogprobs = new("--prompt-logprobs") { Description = "Return the top K logprobs of each prompt token." };
    private readonly Option<bool> _ignoreEos = new("--ignore-eos") { Description = "Keep generating past end-of-sequence tokens." };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { _temperature, _topP, _topK, _minP, _repetitionPenalty, _maxTokens, _seed, _logprobs, _promptLogprobs, _ignoreEos })
            cmd.Add(o);
    }

    public SamplingParams Bind(ParseResult r, SamplingParams defaults, int defaultMaxTokens) => defaults with
    {
        Temperature = r.GetValue(_temperature) ?? defaults.Temperature,
        TopP = r.GetValue(_topP) ?? defaults.TopP,
        TopK = r.GetValue(_topK) ?? defaults.TopK,
        MinP = r.GetValue(_minP) ?? defaults.MinP,
        RepetitionPenalty = r.GetValue(_repetitionPenalty) ?? defaults.RepetitionPenalty,
        MaxTokens = r.GetValue(_maxTokens) ?? defaultMaxTokens,
        Seed = r.GetValue(_seed),
        Logprobs = r.GetValue(_logprobs),
        PromptLogprobs = r.GetValue(_promptLogprobs),
        IgnoreEos = r.GetValue(_ignoreEos),
    };
}
