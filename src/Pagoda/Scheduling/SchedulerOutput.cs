namespace Pagoda.Scheduling;

/// <summary>One request's share of a step: compute <see cref="NumTokens"/> tokens after its computed ones.</summary>
public sealed record ScheduledRequest(Request Request, int NumTokens)
{
    /// <summary>Whether this step computes the request's last known token, so a new one is sampled.</summary>
    public bool SamplesToken => Request.NumComputedTokens + NumTokens >= Request.NumTokens;
}

/// <summary>What one call of <see cref="Scheduler.Schedule"/> decided.</summary>
public sealed record SchedulerOutput(
    IReadOnlyList<ScheduledRequest> Scheduled,
    IReadOnlyList<Request> Preempted,
    int TotalTokens)
{
    /// <summary>Nothing to run.</summary>
    public bool IsEmpty => Scheduled.Count == 0;
}
