namespace Pagoda.Engine;

/// <summary>Per-request state the engine loop owns (vLLM's Request).</summary>
internal sealed class Request(string requestId, string? prompt, int[] promptTokenIds, SamplingParams samplingParams,
    int maxTokens, Random rng)
{
    public string RequestId { get; } = requestId;
    public string? Prompt { get; } = prompt;
    public int[] PromptTokenIds { get; } = promptTokenIds;
    public SamplingParams Params { get; } = samplingParams;
    public int MaxTokens { get; } = maxTokens;
    public Random Rng { get; } = rng;

    public List<int> OutputTokenIds { get; } = [];
    public List<TokenLogprob>? Logprobs { get; } = samplingParams.Logprobs != null ? [] : null;
    public List<TokenLogprob?>? PromptLogprobs { get; } = samplingParams.PromptLogprobs != null ? [null] : null;
    public double CumulativeLogprob { get; set; }

    /// <summary>Tokens whose keys and values are in the KV cache.</summary>
    public int NumComputedTokens { get; set; }

    /// <summary>KV blocks holding this request's context, in order.</summary>
    public List<int> BlockIds { get; } = [];

    public string? FinishReason { get; set; }
    public object? StopReason { get; set; }
    public bool IsFinished => FinishReason != null;

    public int NumTokens => PromptTokenIds.Length + OutputTokenIds.Count;

    public int TokenAt(int index) => index < PromptTokenIds.Length
        ? PromptTokenIds[index]
        : OutputTokenIds[index - PromptTokenIds.Length];
}
