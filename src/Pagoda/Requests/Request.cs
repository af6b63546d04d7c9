using Pagoda.StructuredOutput;

namespace Pagoda.Requests;

/// <summary>Where a request is in its life (vLLM's RequestStatus).</summary>
public enum RequestStatus
{
    /// <summary>Queued, nothing computed.</summary>
    Waiting,
    /// <summary>Holds blocks and is scheduled every step.</summary>
    Running,
    /// <summary>Lost its blocks to a running request; back in the queue to be recomputed.</summary>
    Preempted,
    /// <summary>Holds blocks that a KV transfer is filling with its prompt's KV from a producer (vLLM's WAITING_FOR_REMOTE_KVS).</summary>
    WaitingForRemoteKvs,
    /// <summary>Hit a stop token or stop string.</summary>
    FinishedStopped,
    /// <summary>Hit max_tokens or the context limit.</summary>
    FinishedLength,
    /// <summary>Aborted by the caller.</summary>
    FinishedAborted,
}

/// <summary>
/// The scheduler's view of one sequence: its tokens, how many are in the KV cache, and its status.
/// Sampling state (params, seed) travels with it; draws are keyed by output position, so a preempted request resumes the same draws.
/// </summary>
public sealed class Request(string requestId, int[] promptTokenIds, SamplingParams samplingParams, int maxTokens,
    long seed, IReadOnlySet<int> eosTokenIds)
{
    private readonly List<int> _allTokenIds = [.. promptTokenIds];

    /// <summary>Unique id.</summary>
    public string RequestId { get; } = requestId;

    /// <summary>The prompt.</summary>
    public int[] PromptTokenIds { get; } = promptTokenIds;

    /// <summary>How to sample.</summary>
    public SamplingParams Params { get; } = samplingParams;

    /// <summary>max_tokens, clipped to the context left after the prompt.</summary>
    public int MaxTokens { get; } = maxTokens;

    /// <summary>
    /// The request's own random stream: the draw for output token n is Philox(seed, n), so it does not depend on
    /// what else is in the batch, on preemption, or on the device.
    /// </summary>
    public long Seed { get; } = seed;

    /// <summary>End-of-sequence ids (ignored with IgnoreEos).</summary>
    public IReadOnlySet<int> EosTokenIds { get; } = eosTokenIds;

    /// <summary>Prompt then output.</summary>
    public IReadOnlyList<int> AllTokenIds => _allTokenIds;

    /// <summary>Prompt then output, as a span for scans (valid until the next token is appended).</summary>
    internal ReadOnlySpan<int> AllTokenIdSpan => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_allTokenIds);

    /// <summary>Generated tokens.</summary>
    public IEnumerable<int> OutputTokenIds => _allTokenIds.Skip(PromptTokenIds.Length);

    /// <summary>Number of generated tokens.</summary>
    public int NumOutputTokens => _allTokenIds.Count - PromptTokenIds.Length;

    /// <summary>Prompt + output length.</summary>
    public int NumTokens => _allTokenIds.Count;

    /// <summary>Tokens whose keys and values are in the KV cache.</summary>
    public int NumComputedTokens { get; set; }

    /// <summary>Status.</summary>
    public RequestStatus Status { get; set; } = RequestStatus.Waiting;

    /// <summary>Disaggregated prefill: whether this request produces or consumes its prompt's KV remotely.</summary>
    public KvTransferParams? KvTransferParams => Params.KvTransferParams;

    /// <summary>
    /// Whether the prompt's KV is still to be pulled from a producer before the request computes (cleared once the
    /// pull starts, as vLLM clears do_remote_prefill: one transfer per request, a preempted one recomputes locally).
    /// </summary>
    public bool LoadsRemoteKvs { get; set; } = samplingParams.KvTransferParams?.DoRemotePrefill == true;

    /// <summary>How often it lost its blocks.</summary>
    public int NumPreemptions { get; set; }

    /// <summary>Why it stopped: a stop token id, a stop string, or null.</summary>
    public object? StopReason { get; set; }

    /// <summary>Token sequences of the bad words (each ending in the token to ban).</summary>
    public IReadOnlyList<int[]>? BadWordsTokenIds { get; init; }

    /// <summary>The structured output's state (vLLM's structured_output_request): masks the next token, advanced by each sampled one.</summary>
    public GrammarMatcher? Grammar { get; init; }

    /// <summary>For a reasoning model, the token that ends its reasoning: the grammar applies only after it.</summary>
    public int? ReasoningEndTokenId { get; init; }

    /// <summary>Whether the reasoning has ended (at the start when the prompt already closed it).</summary>
    public bool ReasoningEnded { get; set; }

    /// <summary>Whether the next token is constrained by the grammar.</summary>
    public bool GrammarActive => Grammar != null && (ReasoningEndTokenId == null || ReasoningEnded);

    /// <summary>Chained hashes of its full blocks (grown as tokens arrive).</summary>
    public List<BlockHash> BlockHashes { get; } = [];

    /// <summary>Distinct prompt and output tokens with their output counts, for the penalties (built on first use).</summary>
    public TokenCounts Counts => (_counts ??= new TokenCounts()).Update(_allTokenIds, PromptTokenIds.Length);

    private TokenCounts? _counts;

    /// <summary>
    /// Speculative decoding's draft tokens for the next step (vLLM's spec_token_ids): proposed after each step, verified
    /// by the next one. Empty when nothing is proposed; cleared when the request is preempted.
    /// </summary>
    public int[] SpecTokenIds { get; set; } = [];

    /// <summary>
    /// Appends draft tokens as if they had been sampled, until the scope is disposed: a verification row after them sees
    /// the state it would see had they been (penalty counts, bad words, min_tokens, the draw's output position).
    /// </summary>
    public DraftScope WithDrafts(ReadOnlySpan<int> drafts)
    {
        int length = _allTokenIds.Count;
        foreach (int t in drafts)
            _allTokenIds.Add(t);
        return new DraftScope(this, length);
    }

    /// <summary>Draft tokens appended by <see cref="WithDrafts"/>; disposing removes them.</summary>
    public readonly ref struct DraftScope(Request request, int length)
    {
        /// <summary>Removes the drafts (and their counts).</summary>
        public void Dispose()
        {
            if (request._allTokenIds.Count == length)
                return;
            request._counts?.Truncate(request._allTokenIds, request.PromptTokenIds.Length, length);
            request._allTokenIds.RemoveRange(length, request._allTokenIds.Count - length);
        }
    }

    /// <summary>Whether the status is a finished one.</summary>
    public bool IsFinished => Status >= RequestStatus.FinishedStopped;

    /// <summary>Prompt logprobs need every prompt position computed, so cached prefixes are not reused.</summary>
    public bool SkipPrefixCache => Params.PromptLogprobs != null;

    /// <summary>Appends a sampled token and decides whether the request is done (stop strings aside).</summary>
    public void AppendOutputToken(int token, int maxModelLen)
    {
        _allTokenIds.Add(token);
        int n = NumOutputTokens;
        // The token was sampled under the grammar's mask, so the matcher takes it (a complete grammar then allows only
        // EOS, which ends the request as EOS does). A token it refuses cannot be made sense of: stop there.
        if (Grammar != null && !GrammarActive)
            ReasoningEnded |= token == ReasoningEndTokenId;
        else if (Grammar != null && !Grammar.AcceptToken(token))
        {
            Status = RequestStatus.FinishedStopped;
            return;
        }
        if (n < Params.MinTokens)
        {
            if (n >= MaxTokens)
                Status = RequestStatus.FinishedLength;
            return;
        }
        if (!Params.IgnoreEos && EosTokenIds.Contains(token))
            Status = RequestStatus.FinishedStopped;
        else if (Params.StopTokenIds.Contains(token))
            (Status, StopReason) = (RequestStatus.FinishedStopped, token);
        else if (n >= MaxTokens || NumTokens >= maxModelLen)
            Status = RequestStatus.FinishedLength;
    }

    /// <summary>The finish reason in OpenAI's words.</summary>
    public string? FinishReason => Status switch
    {
        RequestStatus.FinishedStopped => "stop",
        RequestStatus.FinishedLength => "length",
        RequestStatus.FinishedAborted => "abort",
        _ => null,
    };
}
