using Pagoda.KvCache;
using Pagoda.Requests;

namespace Pagoda.Scheduling;

/// <summary>
/// Disaggregated prefill in the scheduler (vLLM's connector hooks, minus the network): a decode request whose prompt's
/// KV comes from a producer gets its blocks at admission and waits (<see cref="RequestStatus.WaitingForRemoteKvs"/>)
/// while the engine's connector fills them; a prefill request for a remote decode keeps its blocks after it finishes
/// until the engine releases them (pulled, or timed out).
/// </summary>
public sealed partial class Scheduler
{
    // Decode requests whose blocks a KV transfer is filling (aborted ones stay until the transfer ends: it writes their blocks).
    private readonly Dictionary<string, Request> _waitingForRemoteKvs = new();
    // Finished prefill requests' blocks, by request id, held for a consumer to pull.
    private readonly Dictionary<string, List<KvCacheBlock>> _heldForRemoteDecode = new();
    private readonly List<Request> _newlyHeld = [];

    /// <summary>Requests whose blocks a KV transfer is filling.</summary>
    public int NumWaitingForRemoteKvs => _waitingForRemoteKvs.Count;

    /// <summary>Whether a KV transfer is filling blocks under this id (an aborted request's too, until the transfer stops).</summary>
    public bool IsLoadingRemoteKvs(string requestId) => _waitingForRemoteKvs.ContainsKey(requestId);

    /// <summary>Finished prefills whose blocks are held for a remote decode.</summary>
    public int NumHeldForRemoteDecode => _heldForRemoteDecode.Count;

    /// <summary>The blocks held for a finished prefill's remote decode, in order; null when none are held.</summary>
    public int[]? HeldBlockIds(string requestId) =>
        _heldForRemoteDecode.TryGetValue(requestId, out var blocks) ? blocks.Select(b => b.BlockId).ToArray() : null;

    /// <summary>The prefills whose blocks began to be held since the last call (the engine tells its connector).</summary>
    public List<Request> TakeNewlyHeld()
    {
        var taken = _newlyHeld.ToList();
        _newlyHeld.Clear();
        return taken;
    }

    /// <summary>Frees the blocks held for a remote decode (pulled, or nobody came in time); false when none were held.</summary>
    public bool ReleaseHeldBlocks(string requestId)
    {
        if (!_heldForRemoteDecode.Remove(requestId, out var blocks))
            return false;
        KvCache.FreeDetached(blocks);
        return true;
    }

    /// <summary>
    /// Ends a request's KV transfer. A request aborted meanwhile has its blocks freed now. A successful transfer makes
    /// every prompt token but the last computed (that one is recomputed here for its logits, as in vLLM) and caches the
    /// full blocks; the request goes back to the front of the queue. A failed one is recomputed locally when
    /// <paramref name="recomputeOnFailure"/> (vLLM's kv_load_failure_policy recompute) and returned otherwise, for the
    /// engine to fail (<see cref="FinishRequests"/> then frees its blocks).
    /// </summary>
    public Request? FinishRemoteLoad(string requestId, bool loaded, bool recomputeOnFailure)
    {
        if (!_waitingForRemoteKvs.Remove(requestId, out var req))
            return null;
        if (req.IsFinished)
        {
            KvCache.Free(req);
            return null;
        }
        if (loaded)
        {
            req.NumComputedTokens = Math.Max(req.NumComputedTokens, req.NumTokens - 1);
            KvCache.CacheBlocks(req, req.NumComputedTokens);
        }
        else if (recomputeOnFailure)
        {
            // The hits stay cached (Free evicts only past the computed tokens); the blocks the transfer wrote were never cached.
            KvCache.Free(req);
            req.NumComputedTokens = 0;
        }
        else
            return req;
        req.Status = RequestStatus.Waiting;
        _waiting.AddFirst(req);
        return null;
    }

    // Admits the head of the queue as a remote load: blocks for every prompt token but the last, local prefix-cache hits
    // adopted first (only the rest is pulled), cached only once the KV has landed. False when the pool has no room.
    private bool TryStartRemoteLoad(Request req, List<RemoteKvLoad> loads)
    {
        var (hitBlocks, hitTokens) = KvCache.GetComputedBlocks(req);
        int needed = req.NumTokens - 1;
        if (!KvCache.AllocateSlots(req, Math.Max(0, needed - hitTokens), hitBlocks, delayCacheBlocks: true))
            return false;
        _waiting.RemoveFirst();
        req.NumComputedTokens = hitTokens;
        req.LoadsRemoteKvs = false;
        req.Status = RequestStatus.WaitingForRemoteKvs;
        _waitingForRemoteKvs[req.RequestId] = req;
        int firstBlock = hitTokens / KvCache.BlockSize;
        int lastBlock = (needed + KvCache.BlockSize - 1) / KvCache.BlockSize;
        loads.Add(new RemoteKvLoad(req, KvCache.GetBlockIds(req.RequestId), firstBlock, Math.Max(0, lastBlock - firstBlock)));
        return true;
    }

    // vLLM's request_finished for a producer: a prefill that ran to its max_tokens keeps its blocks for the decode
    // instance; one that stopped (EOS, stop token) answered the client already, so nobody will pull them.
    private bool TryHoldForRemoteDecode(Request req)
    {
        // The same id again (a retried prefill) while the first is held: the older hold stays (a pull may be reading
        // it), and this one answers without kv_transfer_params, so its decode computes the prompt itself.
        if (req.KvTransferParams is not { DoRemoteDecode: true } || req.Status != RequestStatus.FinishedLength
            || req.NumComputedTokens == 0 || _heldForRemoteDecode.ContainsKey(req.RequestId))
            return false;
        _heldForRemoteDecode[req.RequestId] = KvCache.DetachBlocks(req);
        _newlyHeld.Add(req);
        return true;
    }
}

/// <summary>
/// A decode request admitted to wait for its prompt's KV: the engine's connector pulls the producer's blocks
/// [<see cref="FirstBlock"/>, FirstBlock + <see cref="NumBlocks"/>) into the same positions of <see cref="BlockIds"/>
/// (the blocks before are local prefix-cache hits).
/// </summary>
public sealed record RemoteKvLoad(Request Request, int[] BlockIds, int FirstBlock, int NumBlocks);
