namespace Pagoda.Scheduling;

/// <summary>The scheduler's limits (vLLM's names).</summary>
/// <param name="MaxNumBatchedTokens">Tokens one step may compute (the unified budget).</param>
/// <param name="MaxNumSeqs">Requests that may run at once.</param>
/// <param name="MaxModelLen">Longest prompt + output.</param>
public sealed record SchedulerConfig(int MaxNumBatchedTokens, int MaxNumSeqs, int MaxModelLen);
