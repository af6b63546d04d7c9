using System.Collections.Concurrent;
using Pagoda.Backends;

namespace Pagoda.KvTransfer;

/// <summary>
/// PagodaConnector, one per engine (vLLM's KV connector, both its scheduler and worker sides): as a producer it holds
/// finished prefills' blocks and serves pulls of them on its listener; as a consumer it runs pulls into blocks the
/// scheduler allocated. The network never runs on the engine's thread: the engine hands work over
/// (<see cref="Hold"/>, <see cref="StartLoad"/>) and collects what ended at the start of each step
/// (<see cref="TakeReleasedSends"/>, <see cref="TakeFinishedLoads"/>); <see cref="SetWake"/> tells an idle loop.
/// </summary>
public sealed class KvConnector : IDisposable
{
    private readonly PagedKvCache _cache;
    private readonly IKvBlockCopy _copy;
    private readonly PendingSends _sends = new();
    private readonly KvTransferServer? _server;
    private readonly ConcurrentDictionary<string, (CancellationTokenSource Cancel, Task Pull)> _loads = new();
    private readonly ConcurrentQueue<(string RequestId, Exception? Error)> _finishedLoads = new();
    private readonly ConcurrentDictionary<Task, bool> _releases = new();
    private volatile Action? _wake;

    /// <summary>A connector over the engine's pool; a producer starts listening on kv_ip:kv_port.</summary>
    public KvConnector(KvTransferConfig config, PagedKvCache cache, IKvBlockCopy copy, Action<string> warn)
    {
        config.Validate();
        (Config, _cache, _copy) = (config, cache, copy);
        Layout = KvLayout.Of(cache);
        KvTransferWire.DTypeCode(Layout.DType); // a pool that cannot go on the wire fails here, not at the first pull
        if (config.IsKvProducer && System.Net.IPAddress.TryParse(config.KvIp, out var ip)
            && (ip.Equals(System.Net.IPAddress.Any) || ip.Equals(System.Net.IPAddress.IPv6Any)))
            warn($"--kv-transfer-config: kv_ip {config.KvIp} is what consumers are told to connect to (remote_host), and no other host can; "
                + "set kv_ip to this instance's address.");
        if (config.IsKvProducer)
            _server = new KvTransferServer(config.KvIp, config.KvPort, config.EngineId, Layout, _sends, copy, cache, config.TransferTimeout,
                () => _wake?.Invoke(), warn);
    }

    /// <summary>The configuration.</summary>
    public KvTransferConfig Config { get; }

    /// <summary>This engine's pool layout, which a producer and its consumers share.</summary>
    public KvLayout Layout { get; }

    /// <summary>The producer's listening port (the one bound when kv_port is 0); null for a consumer.</summary>
    public int? Port => _server?.Port;

    /// <summary>Prefills whose blocks are held for a consumer.</summary>
    public int NumPendingSends => _sends.Count;

    /// <summary>Pulls under way.</summary>
    public int NumLoading => _loads.Count;

    /// <summary>Sets what to call (from any thread) when a pull or a send ends: the engine's loop wakes to collect it.</summary>
    public void SetWake(Action wake) => _wake = wake;

    /// <summary>
    /// Producer: holds a finished prefill's blocks for a consumer until pulled or until abort_request_timeout, and
    /// returns the params its decode request carries (vLLM's request_finished).
    /// </summary>
    public KvTransferParams Hold(string requestId, int[] blockIds, IReadOnlyList<int> promptTokenIds)
    {
        _sends.Add(requestId, blockIds, KvTransferWire.PromptHash(promptTokenIds), PendingSends.Now + (long)Config.AbortRequestTimeout.TotalMilliseconds);
        return new KvTransferParams
        {
            DoRemotePrefill = true,
            DoRemoteDecode = false,
            RemoteEngineId = Config.EngineId,
            RemoteRequestId = requestId,
            RemoteBlockIds = blockIds,
            RemoteHost = Config.KvIp,
            RemotePort = Port,
            TpSize = 1,
            RemoteNumTokens = promptTokenIds.Count,
        };
    }

    /// <summary>Producer: the holds that ended since the last call (pulled, or expired): their blocks are to be freed.</summary>
    public List<string> TakeReleasedSends() => _sends.TakeReleased(PendingSends.Now);

    /// <summary>
    /// Consumer: starts pulling the producer's <paramref name="remoteBlockIds"/> into <paramref name="localBlockIds"/>
    /// for <paramref name="requestId"/>, whose prompt is <paramref name="promptTokenIds"/>; its end (with the error, if
    /// any) comes from <see cref="TakeFinishedLoads"/>.
    /// </summary>
    public void StartLoad(string requestId, KvTransferParams remote, int[] remoteBlockIds, int[] localBlockIds, IReadOnlyList<int> promptTokenIds)
    {
        if (remoteBlockIds.Length != localBlockIds.Length)
            throw new ArgumentException($"{remoteBlockIds.Length} remote blocks cannot fill {localBlockIds.Length} local ones.");
        var cancel = new CancellationTokenSource();
        var pull = new KvPullRequest(remote.RemoteEngineId!, remote.RemoteRequestId!, KvTransferWire.PromptHash(promptTokenIds), Layout, remoteBlockIds);
        // Registered before it runs, so that an abort right after this call finds it.
        var started = new TaskCompletionSource();
        var task = Task.Run(async () =>
        {
            await started.Task;
            Exception? error = null;
            try
            {
                await KvPull.RunAsync(pull, remote.RemoteHost!, remote.RemotePort!.Value, localBlockIds, _copy, _cache, Config.TransferTimeout, cancel.Token);
            }
            catch (Exception e)
            {
                error = e;
            }
            // Out of the table first: once the engine sees the end, nothing of this pull touches the pool any more.
            _loads.TryRemove(requestId, out _);
            cancel.Dispose();
            _finishedLoads.Enqueue((requestId, error));
            _wake?.Invoke();
        });
        if (!_loads.TryAdd(requestId, (cancel, task)))
            throw new InvalidOperationException($"Request '{requestId}' is loading remote KVs already.");
        started.SetResult();
    }

    /// <summary>Consumer: stops a pull (its request was aborted); it still ends through <see cref="TakeFinishedLoads"/>.</summary>
    public void CancelLoad(string requestId)
    {
        if (_loads.TryGetValue(requestId, out var load))
        {
            try
            {
                load.Cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It ended in the meantime.
            }
        }
    }

    /// <summary>
    /// Consumer: tells a producer that a decode request will not pull its blocks (aborted before its pull started), so
    /// they are freed now rather than at the producer's timeout: a pull of no blocks, whose result nobody waits for.
    /// </summary>
    public void ReleaseRemote(KvTransferParams remote, IReadOnlyList<int> promptTokenIds)
    {
        var pull = new KvPullRequest(remote.RemoteEngineId!, remote.RemoteRequestId!, KvTransferWire.PromptHash(promptTokenIds), Layout, []);
        var task = Task.Run(async () =>
        {
            try
            {
                await KvPull.RunAsync(pull, remote.RemoteHost!, remote.RemotePort!.Value, [], _copy, _cache, Config.TransferTimeout, CancellationToken.None);
            }
            catch (KvTransferException)
            {
                // The producer frees them at its timeout anyway.
            }
        });
        _releases.TryAdd(task, true);
        _ = task.ContinueWith(t => _releases.TryRemove(t, out _), TaskScheduler.Default);
    }

    /// <summary>Consumer: the pulls that ended since the last call, each with its error (null: the KV is in place).</summary>
    public List<(string RequestId, Exception? Error)> TakeFinishedLoads()
    {
        var taken = new List<(string, Exception?)>();
        while (_finishedLoads.TryDequeue(out var f))
            taken.Add(f);
        return taken;
    }

    /// <summary>Whether the engine has something to collect: an ended pull, or a hold that ended or expired.</summary>
    public bool HasEvents => !_finishedLoads.IsEmpty || _sends.HasReleased(PendingSends.Now);

    /// <summary>How long until the next hold expires (an idle loop wakes then to free its blocks); null when none waits.</summary>
    public TimeSpan? UntilNextExpiry => _sends.NextDeadline is long d ? TimeSpan.FromMilliseconds(Math.Max(0, d - PendingSends.Now)) : null;

    /// <summary>Stops the listener and every pull, and waits for them: nothing touches the pool after this returns.</summary>
    public void Dispose()
    {
        _server?.Dispose();
        foreach (var (_, load) in _loads)
        {
            try
            {
                load.Cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
        try
        {
            Task.WaitAll([.. _loads.Values.Select(l => l.Pull), .. _releases.Keys]);
        }
        catch (AggregateException)
        {
            // Pull errors are reported through TakeFinishedLoads; at shutdown nobody reads them.
        }
    }
}
