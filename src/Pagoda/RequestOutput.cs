namespace Pagoda;

/// <summary>One of the most likely tokens at a position.</summary>
public sealed record TopLogprob(int TokenId, double Logprob);

/// <summary>A chosen (or prompt) token's logprob, its rank (1 = most likely) and the top-K alternatives.</summary>
public sealed record TokenLogprob(int TokenId, double Logprob, int Rank, IReadOnlyList<TopLogprob> Top);

/// <summary>One generated sequence of a request (vLLM's CompletionOutput).</summary>
public sealed record CompletionOutput(
    int Index,
    string Text,
    IReadOnlyList<int> TokenIds,
    double? CumulativeLogprob,
    IReadOnlyList<TokenLogprob>? Logprobs,
    string? FinishReason,
    object? StopReason);

/// <summary>The result of one request (vLLM's RequestOutput); PromptLogprobs[0] is always null.</summary>
public sealed record RequestOutput(
    string RequestId,
    string? Prompt,
    IReadOnlyList<int> PromptTokenIds,
    IReadOnlyList<TokenLogprob?>? PromptLogprobs,
    IReadOnlyList<CompletionOutput> Outputs,
    bool Finished)
{
    /// <summary>
    /// On the final output of a prefill request whose blocks a producer holds (vLLM's kv_transfer_params): what the
    /// decode request must carry to pull them. Null otherwise.
    /// </summary>
    public KvTransferParams? KvTransferParams { get; init; }
}
