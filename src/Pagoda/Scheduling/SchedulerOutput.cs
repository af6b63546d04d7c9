using Pagoda.Requests;

namespace Pagoda.Scheduling;

/// <summary>
/// One request's share of a step: compute <see cref="NumTokens"/> tokens after its computed ones, with its
/// KV blocks in order (<see cref="BlockIds"/>, taken after this step's allocation: block b holds positions
/// b × block size onwards).
/// </summary>
public sealed record ScheduledRequest(Request Request, int NumTokens, int[] BlockIds)
{
    /// <summary>Whether this step computes the request's last known token, so a new one is sampled.</summary>
    public bool SamplesToken => Request.NumComputedTokens + NumTokens >= Request.NumTokens;

    /// <summary>
    /// The draft tokens this step verifies (vLLM's scheduled_spec_decode_tokens): the last of the
    /// <see cref="NumTokens"/>, after the request's known tokens. Their rows are sampled in order, each as if the drafts
    /// before it had been sampled, until one differs from its draft.
    /// </summary>
    public int[] SpecTokenIds { get; init; } = [];
}

/// <summary>What one call of <see cref="Scheduler.Schedule"/> decided: everything the model runner needs.</summary>
public sealed record SchedulerOutput(
    IReadOnlyList<ScheduledRequest> Scheduled,
    IReadOnlyList<Request> Preempted,
    int TotalTokens,
    int BlockSize)
{
    /// <summary>Nothing to run.</summary>
    public bool IsEmpty => Scheduled.Count == 0;

    /// <summary>Decode requests admitted this step to wait for their prompt's KV from a producer: the pulls to start.</summary>
    public IReadOnlyList<RemoteKvLoad> RemoteLoads { get; init; } = [];

    /// <summary>
    /// The scheduled requests to recompute when those in <paramref name="leftOut"/> do not run. A request
    /// left out never writes its blocks past its computed tokens, yet the scheduler registered the full ones
    /// in the prefix cache, and a request admitted later in the same step may have adopted them as hits. Such
    /// readers must not attend over garbage; their own unwritten blocks then count in turn.
    /// </summary>
    public List<Request> ReadersOfUnwrittenBlocks(IReadOnlySet<string> leftOut)
    {
        var readers = new List<Request>();
        if (leftOut.Count == 0)
            return readers;
        var unwritten = new HashSet<int>();
        void MarkUnwritten(ScheduledRequest s)
        {
            for (int i = s.Request.NumComputedTokens / BlockSize; i < s.BlockIds.Length; i++)
                unwritten.Add(s.BlockIds[i]);
        }
        var kept = new List<ScheduledRequest>();
        foreach (var s in Scheduled)
        {
            if (leftOut.Contains(s.Request.RequestId))
                MarkUnwritten(s);
            else
                kept.Add(s);
        }
        // Blocks past a request's computed tokens are its own, so any overlap is a hit on unwritten KV.
        for (int i = 0; i < kept.Count;)
        {
            if (!kept[i].BlockIds.Any(unwritten.Contains))
            {
                i++;
                continue;
            }
            readers.Add(kept[i].Request);
            MarkUnwritten(kept[i]);
            kept.RemoveAt(i);
            i = 0; // a reader admitted earlier may share the blocks this one left unwritten
        }
        return readers;
    }
}
