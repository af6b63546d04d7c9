using Pagoda.KvCache;
using Pagoda.Requests;

namespace Pagoda.Scheduling;

/// <summary>
/// vLLM v1's scheduler: one token budget per step, spent on running requests first (each gets all its
/// uncomputed tokens, so a decode gets one and a long prompt continues its chunked prefill), then on
/// waiting requests in arrival order (after a prefix-cache lookup). When blocks run out, the newest
/// running request is preempted: its blocks are freed and it is recomputed later. Disaggregated prefill's
/// bookkeeping (requests waiting for remote KVs, blocks held for a remote decode) is in Scheduler.RemoteKvs.cs.
/// </summary>
public sealed partial class Scheduler(SchedulerConfig config, KvCacheManager kvCache)
{
    private readonly LinkedList<Request> _waiting = new();
    private readonly List<Request> _running = [];

    /// <summary>The KV cache bookkeeping.</summary>
    public KvCacheManager KvCache { get; } = kvCache;

    /// <summary>The limits.</summary>
    public SchedulerConfig Config { get; } = config;

    /// <summary>Requests waiting (new or preempted, or for their prompt's KV from a producer).</summary>
    public int NumWaiting => _waiting.Count + _waitingForRemoteKvs.Count;

    /// <summary>Requests holding blocks.</summary>
    public int NumRunning => _running.Count;

    /// <summary>Preemptions since start.</summary>
    public long NumPreemptions { get; private set; }

    /// <summary>Whether any request is waiting or running.</summary>
    public bool HasUnfinishedRequests => _waiting.Count > 0 || _running.Count > 0 || _waitingForRemoteKvs.Count > 0;

    /// <summary>Whether a step could compute anything: requests waiting for remote KVs cannot until their KV lands.</summary>
    public bool HasSchedulableRequests => _waiting.Count > 0 || _running.Count > 0;

    /// <summary>Queues a new request (first come, first served).</summary>
    public void AddRequest(Request request) => _waiting.AddLast(request);

    /// <summary>Decides what the next step computes.</summary>
    public SchedulerOutput Schedule()
    {
        int budget = Config.MaxNumBatchedTokens;
        var scheduled = new List<ScheduledRequest>();
        var preempted = new List<Request>();
        var remoteLoads = new List<RemoteKvLoad>();

        for (int i = 0; i < _running.Count && budget > 0;)
        {
            var req = _running[i];
            // Draft tokens are computed with the request's own and count against the budget; those it cuts off are dropped.
            int numNew = Math.Min(req.NumTokens + req.SpecTokenIds.Length - req.NumComputedTokens, budget);
            if (numNew <= 0)
            {
                i++;
                continue;
            }
            int numSpec = Math.Max(0, req.NumComputedTokens + numNew - req.NumTokens);
            bool allocated;
            while (!(allocated = KvCache.AllocateSlots(req, numNew + Lookahead(req, numNew))))
            {
                // The newest running request gives way; it may be this one.
                var victim = _running[^1];
                _running.RemoveAt(_running.Count - 1);
                Preempt(victim);
                preempted.Add(victim);
                if (victim == req)
                    break;
            }
            if (!allocated)
                break;
            var spec = req.SpecTokenIds;
            scheduled.Add(new ScheduledRequest(req, numNew, KvCache.GetBlockIds(req.RequestId)) { SpecTokenIds = numSpec == spec.Length ? spec : spec[..numSpec] });
            budget -= numNew;
            i++;
        }

        // New work only when nothing had to give way this step. A remote load computes nothing, so it needs no budget.
        while (preempted.Count == 0 && _waiting.Count > 0 && _running.Count + _waitingForRemoteKvs.Count < Config.MaxNumSeqs)
        {
            var req = _waiting.First!.Value;
            if (req.LoadsRemoteKvs)
            {
                if (!TryStartRemoteLoad(req, remoteLoads))
                    break;
                continue;
            }
            if (budget <= 0)
                break;
            var (hitBlocks, hitTokens) = req.NumComputedTokens == 0 ? KvCache.GetComputedBlocks(req) : ([], 0);
            int numNew = Math.Min(req.NumTokens - req.NumComputedTokens - hitTokens, budget);
            if (!KvCache.AllocateSlots(req, numNew + Lookahead(req, numNew, hitTokens), hitBlocks))
                break;
            _waiting.RemoveFirst();
            req.NumComputedTokens += hitTokens;
            req.Status = RequestStatus.Running;
            _running.Add(req);
            scheduled.Add(new ScheduledRequest(req, numNew, KvCache.GetBlockIds(req.RequestId)));
            budget -= numNew;
        }
        return new SchedulerOutput(scheduled, preempted, Config.MaxNumBatchedTokens - budget, KvCache.BlockSize) { RemoteLoads = remoteLoads };
    }

    // The lookahead slots a step allocates for a draft model, within the context limit.
    private int Lookahead(Request req, int numNew, int hitTokens = 0) =>
        Math.Max(0, Math.Min(Config.NumLookaheadTokens, Config.MaxModelLen - (req.NumComputedTokens + hitTokens + numNew)));

    /// <summary>
    /// Records a step's results: computed tokens advance; each request that finished its known tokens gets its
    /// sampled tokens (one, or with drafts the accepted ones and the token after them: the computed drafts past the
    /// accepted ones are rolled back, and their slots are written again by later steps), stopping at the first that
    /// ends it; finished requests free their blocks (a prefill for a remote decode holds them instead, see
    /// <see cref="HeldBlockIds"/>). Returns the requests that finished.
    /// </summary>
    public List<Request> Update(SchedulerOutput output, IReadOnlyDictionary<string, int[]> sampledTokens)
    {
        var finished = new List<Request>();
        foreach (var s in output.Scheduled)
        {
            var req = s.Request;
            bool samples = s.SamplesToken;
            req.NumComputedTokens += s.NumTokens;
            if (!samples)
                continue;
            var tokens = sampledTokens[req.RequestId];
            req.NumComputedTokens -= s.SpecTokenIds.Length + 1 - tokens.Length;
            req.SpecTokenIds = [];
            foreach (int token in tokens)
            {
                req.AppendOutputToken(token, Config.MaxModelLen);
                if (req.IsFinished)
                    break;
            }
            if (req.IsFinished)
            {
                req.NumComputedTokens = Math.Min(req.NumComputedTokens, req.NumTokens);   // drafts past its last token
                _running.Remove(req);
                if (!TryHoldForRemoteDecode(req))
                    KvCache.Free(req);
                finished.Add(req);
            }
        }
        return finished;
    }

    /// <summary>
    /// Ends requests from outside (abort, or a stop string found in the text); frees their blocks at once, except
    /// those of a request whose KV transfer is still writing them: they are freed when it ends (<see cref="FinishRemoteLoad"/>).
    /// </summary>
    public void FinishRequests(IEnumerable<Request> requests, RequestStatus status)
    {
        foreach (var req in requests)
        {
            if (req.IsFinished)
                continue;
            if (req.Status == RequestStatus.Running)
                _running.Remove(req);
            else if (req.Status == RequestStatus.WaitingForRemoteKvs && _waitingForRemoteKvs.ContainsKey(req.RequestId))
            {
                req.Status = status;
                continue;
            }
            else
                _waiting.Remove(req);
            KvCache.Free(req);
            req.Status = status;
        }
    }

    /// <summary>
    /// Sends running requests whose scheduled step was dropped back to the front of the waiting queue with
    /// nothing computed (a preemption by recompute): their blocks were shared with a request that failed.
    /// </summary>
    public void Recompute(IEnumerable<Request> requests)
    {
        foreach (var req in requests)
        {
            if (req.Status != RequestStatus.Running)
                continue;
            _running.Remove(req);
            Preempt(req);
        }
    }

    private void Preempt(Request req)
    {
        KvCache.Free(req);
        req.SpecTokenIds = [];
        req.Status = RequestStatus.Preempted;
        req.NumComputedTokens = 0;
        req.NumPreemptions++;
        NumPreemptions++;
        _waiting.AddFirst(req);
    }
}
