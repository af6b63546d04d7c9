namespace Pagoda.Scheduling;

/// <summary>The scheduler's limits (vLLM's names).</summary>
/// <param name="MaxNumBatchedTokens">Tokens one step may compute (the unified budget).</param>
/// <param name="MaxNumSeqs">Requests that may run at once.</param>
/// <param name="MaxModelLen">Longest prompt + output.</param>
/// <param name="NumLookaheadTokens">
/// Slots allocated past a request's scheduled tokens (vLLM's num_lookahead_tokens): where a draft model writes the KV
/// of the drafts it feeds itself after the step. 0 without one.
/// </param>
public sealed record SchedulerConfig(int MaxNumBatchedTokens, int MaxNumSeqs, int MaxModelLen, int NumLookaheadTokens = 0);
