namespace Pagoda.Execution;

/// <summary>Where inside a step <see cref="EngineArgs.FaultHook"/> is consulted, once per request.</summary>
public enum FaultSite
{
    /// <summary>While the step's batch is assembled, before the forward.</summary>
    Step,

    /// <summary>Inside the step's forward, once per request of the batch: a throw fails the whole batch.</summary>
    Forward,

    /// <summary>Just before the request's next token is sampled.</summary>
    Sampler,

    /// <summary>Just before the request's new token is detokenized.</summary>
    Detokenizer,
}

/// <summary>
/// A test-only hook: called at each <see cref="FaultSite"/> with the id of the sequence being processed; an
/// exception it throws is treated exactly like a bug hitting that one request.
/// </summary>
public delegate void FaultHook(FaultSite site, string requestId);
