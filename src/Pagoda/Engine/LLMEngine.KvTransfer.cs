using Pagoda.Backends;
using Pagoda.KvTransfer;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.Engine;

/// <summary>
/// Disaggregated prefill in the engine (with `--kv-transfer-config`): the glue between the scheduler's bookkeeping and
/// the connector's network. Each step first collects what the connector finished (pulls that landed or failed, holds
/// that ended), then starts the pulls the scheduler admitted, and after recording hands the prefills whose blocks are
/// now held to the connector; their final outputs carry the kv_transfer_params their decode requests need.
/// </summary>
public sealed partial class LLMEngine
{
    private readonly KvConnector? _connector;
    // The params of held prefills, attached to their final outputs (which a deferred step emits later).
    private readonly Dictionary<string, KvTransferParams> _kvTransferOutputs = new();
    // The last step could do nothing though requests wait: blocks are held for remote decodes or being filled by pulls.
    // Until a request comes or goes, or the connector frees or fills blocks, another step would do nothing too.
    private bool _stalled;

    /// <summary>The KV connector (null without `--kv-transfer-config`).</summary>
    public KvConnector? KvConnector => _connector;

    /// <summary>
    /// Whether a step can do anything now. Requests waiting only for their remote KV cannot, nor can waiting requests
    /// when held or loading blocks fill the pool: an idle loop then waits for the connector
    /// (<see cref="KvConnector.SetWake"/>), a new command or the next hold's expiry instead of spinning.
    /// </summary>
    public bool HasStepWork => _connector?.HasEvents == true
        || (!_stalled && (_scheduler.HasSchedulableRequests || _deferred != null || _output.NumUnfinished > _scheduler.NumWaitingForRemoteKvs));

    /// <summary>
    /// Throws <see cref="ArgumentException"/> when this engine cannot take a request's kv_transfer_params: the role it
    /// asks for is not this instance's, or the producer's prompt is not this one. The server checks before a stream starts.
    /// </summary>
    public void CheckKvTransferParams(SamplingParams samplingParams, int numPromptTokens)
    {
        if (samplingParams.KvTransferParams is not { IsActive: true } kv)
            return;
        var config = _connector?.Config;
        if (kv.DoRemoteDecode && config?.IsKvProducer != true)
            throw new ArgumentException("kv_transfer_params.do_remote_decode needs a KV producer: this instance runs without "
                + "--kv-transfer-config '{\"kv_connector\": \"PagodaConnector\", \"kv_role\": \"kv_producer\"}' (or kv_both).");
        if (!kv.DoRemotePrefill)
            return;
        if (config?.IsKvConsumer != true)
            throw new ArgumentException("kv_transfer_params.do_remote_prefill needs a KV consumer: this instance runs without "
                + "--kv-transfer-config '{\"kv_connector\": \"PagodaConnector\", \"kv_role\": \"kv_consumer\"}' (or kv_both).");
        if (kv.RemoteNumTokens is int remote && remote != numPromptTokens)
            throw new ArgumentException($"kv_transfer_params: the producer prefilled a prompt of {remote} tokens, this request's has "
                + $"{numPromptTokens}; a decode request must carry the same prompt as its prefill.");
        int needed = (numPromptTokens - 1 + Args.BlockSize - 1) / Args.BlockSize;
        if (kv.RemoteBlockIds!.Count < needed)
            throw new ArgumentException($"kv_transfer_params: {kv.RemoteBlockIds.Count} remote_block_ids cannot hold a prompt of "
                + $"{numPromptTokens} tokens in blocks of {Args.BlockSize}.");
        if (samplingParams.PromptLogprobs != null)
            throw new ArgumentException("kv_transfer_params: prompt_logprobs cannot be computed for a prompt whose KV comes from a producer.");
    }

    // The connector, when configured: the model must keep every block (a sliding window frees them behind it) and the
    // backend must copy blocks to and from host memory.
    private KvConnector? CreateKvConnector(KvTransferConfig? config, PagedKvCache cache, Action<string> warn)
    {
        if (config is null)
            return null;
        if (KvCacheInfo.SlidingWindow > 0)
            throw new ArgumentException($"--kv-transfer-config: models whose every layer slides (their KV cache frees blocks behind the window) are not supported; this one's {KvCacheInfo.SlidingWindow}-token window is shorter than --max-model-len {MaxModelLen}.");
        if (_backend is not IKvBlockCopy copy)
            throw new ArgumentException($"--kv-transfer-config: the {_backend.Name} backend cannot copy KV blocks to and from host memory.");
        try
        {
            return new KvConnector(config, cache, copy, warn);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new ArgumentException($"--kv-transfer-config: cannot listen on {config.KvIp}:{config.KvPort}: {e.Message}", e);
        }
    }

    // Start of a step: holds that ended free their blocks; pulls that ended make their requests schedulable, or fail
    // them (kv_load_failure_policy fail), or send them back to be prefilled here (recompute).
    private void ProcessKvTransfers()
    {
        if (_connector is null)
            return;
        foreach (string id in _connector.TakeReleasedSends())
            _scheduler.ReleaseHeldBlocks(id);
        bool recompute = _connector.Config.RecomputesFailedLoads;
        foreach (var (id, error) in _connector.TakeFinishedLoads())
        {
            if (_scheduler.FinishRemoteLoad(id, error is null, recompute) is not null)
                Fail(id, error!);
            else if (error is KvTransferException && recompute)
                _warn($"{error.Message} Request '{id}' prefills its prompt here instead (kv_load_failure_policy recompute).");
        }
    }

    // After scheduling: the pulls of the requests admitted to wait for remote KVs.
    private void StartRemoteLoads(SchedulerOutput scheduled)
    {
        foreach (var load in scheduled.RemoteLoads)
        {
            var remote = load.Request.KvTransferParams!;
            int[] remoteIds = remote.RemoteBlockIds!.Skip(load.FirstBlock).Take(load.NumBlocks).ToArray();
            int[] localIds = load.BlockIds[load.FirstBlock..(load.FirstBlock + load.NumBlocks)];
            _connector!.StartLoad(load.Request.RequestId, remote, remoteIds, localIds, load.Request.PromptTokenIds);
        }
    }

    // After recording: the prefills that finished holding their blocks are the connector's to serve.
    private void HoldFinishedPrefills()
    {
        foreach (var req in _scheduler.TakeNewlyHeld())
            _kvTransferOutputs[req.RequestId] = _connector!.Hold(req.RequestId, _scheduler.HeldBlockIds(req.RequestId)!, req.PromptTokenIds);
    }

    // A held prefill's final output carries its kv_transfer_params.
    private List<RequestOutput> AttachKvTransferParams(List<RequestOutput> outputs)
    {
        if (_kvTransferOutputs.Count == 0)
            return outputs;
        for (int i = 0; i < outputs.Count; i++)
        {
            if (outputs[i].Finished && _kvTransferOutputs.Remove(outputs[i].RequestId, out var p))
                outputs[i] = outputs[i] with { KvTransferParams = p };
        }
        return outputs;
    }

    // An aborted decode request stops its pull (its blocks are freed once the pull has let go of them), or, when its pull
    // never started, tells the producer to free what it holds for it (vLLM sends the same notification).
    private void AbortKvTransfers(IReadOnlyList<Request> children)
    {
        if (_connector is null)
            return;
        foreach (var child in children)
        {
            if (child.Status == RequestStatus.WaitingForRemoteKvs)
                _connector.CancelLoad(child.RequestId);
            else if (child.LoadsRemoteKvs && !child.IsFinished)
                _connector.ReleaseRemote(child.KvTransferParams!, child.PromptTokenIds);
        }
    }
}
