using System.Net;
using System.Net.Sockets;
using Pagoda.Backends;

namespace Pagoda.KvTransfer;

/// <summary>
/// The producer's TCP listener: each connection is one pull (see <see cref="KvTransferWire"/>), served on the thread
/// pool, never on the engine's thread. A session checks the engine id, the layout and that the request holds the blocks,
/// then streams them layer by layer, reading each layer out of the pool just before sending it, so the copy of layer
/// l + 1 overlaps the network sending layer l. Whatever the session's end, the hold is then over.
/// </summary>
internal sealed class KvTransferServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly string _engineId;
    private readonly KvLayout _layout;
    private readonly PendingSends _sends;
    private readonly IKvBlockCopy _copy;
    private readonly PagedKvCache _cache;
    private readonly TimeSpan _timeout;
    private readonly Action _wake;
    private readonly Action<string> _warn;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly HashSet<Task> _sessions = [];
    private readonly Task _accepting;

    /// <summary>Binds <paramref name="host"/>:<paramref name="port"/> (0: a free port) and starts accepting.</summary>
    /// <param name="wake">Called when a hold ends, so the engine frees its blocks without waiting for other work.</param>
    public KvTransferServer(string host, int port, string engineId, KvLayout layout, PendingSends sends, IKvBlockCopy copy, PagedKvCache cache,
        TimeSpan timeout, Action wake, Action<string> warn)
    {
        (_engineId, _layout, _sends, _copy, _cache, _timeout, _wake, _warn) = (engineId, layout, sends, copy, cache, timeout, wake, warn);
        var address = IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).First();
        _listener = new TcpListener(address, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>The port bound (the configured one, or the one the OS chose for 0).</summary>
    public int Port { get; }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException && _stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                _warn($"KV transfer listener: accept failed: {e.Message}");
                continue;
            }
            lock (_lock)
            {
                var session = Task.Run(() => ServeAsync(client));
                _sessions.Add(session);
                _ = session.ContinueWith(t =>
                {
                    lock (_lock)
                        _sessions.Remove(t);
                }, TaskScheduler.Default);
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        try
        {
            await ServeAsync(client, client.GetStream());
        }
        finally
        {
            client.Dispose();
        }
    }

    private async Task ServeAsync(TcpClient client, NetworkStream stream)
    {
        client.NoDelay = true;
        KvPullRequest request;
        try
        {
            using (var t = Deadline())
                request = await KvTransferWire.ReadRequestAsync(stream, t.Token);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or OperationCanceledException)
        {
            if (e is InvalidDataException)
                await TryRefuse(stream, KvPullStatus.Malformed, e.Message);
            return;
        }
        var (status, message) = Check(request);
        if (status == KvPullStatus.Ok)
            (status, message) = _sends.BeginSend(request.RequestId, request.PromptHash, request.BlockIds);
        if (status != KvPullStatus.Ok)
        {
            await TryRefuse(stream, status, message!);
            return;
        }
        try
        {
            await SendBlocksAsync(stream, request.BlockIds);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The consumer went away or stalled: its request fails (or recomputes) there; the hold is over either way.
            if (!_stop.IsCancellationRequested)
                _warn($"KV transfer of request '{request.RequestId}' to {client.Client.RemoteEndPoint} broke off: {e.Message}");
        }
        finally
        {
            _sends.EndSend(request.RequestId);
            _wake();
        }
    }

    private (KvPullStatus, string?) Check(KvPullRequest r)
    {
        if (r.EngineId != _engineId)
            return (KvPullStatus.UnknownEngine, $"this is engine '{_engineId}', not '{r.EngineId}'");
        if (r.Layout != _layout)
            return (KvPullStatus.LayoutMismatch, $"this engine's KV cache is {_layout}; the consumer's is {r.Layout}");
        return (KvPullStatus.Ok, null);
    }

    private async Task SendBlocksAsync(NetworkStream stream, int[] blockIds)
    {
        using (var t = Deadline())
            await stream.WriteAsync(KvTransferWire.EncodeOk(_layout, blockIds.Length), t.Token);
        long bytes = checked(blockIds.Length * _layout.BlockBytes);
        var keys = new byte[bytes];
        var values = new byte[bytes];
        for (int layer = 0; layer < _layout.NumLayers; layer++)
        {
            _stop.Token.ThrowIfCancellationRequested();
            _copy.CopyKvBlocksToHost(_cache, layer, blockIds, keys, values);
            using var t = Deadline();
            await stream.WriteAsync(keys, t.Token);
            await stream.WriteAsync(values, t.Token);
        }
    }

    private async Task TryRefuse(NetworkStream stream, KvPullStatus status, string message)
    {
        try
        {
            using var t = Deadline();
            await stream.WriteAsync(KvTransferWire.EncodeError(status, message), t.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The consumer is gone; it learns nothing more.
        }
    }

    // Every read or write of a session must finish within the transfer timeout, and stops when the server does.
    private CancellationTokenSource Deadline()
    {
        var t = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        t.CancelAfter(_timeout);
        return t;
    }

    /// <summary>Stops listening and waits for every session to end, so none reads the pool after this returns.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        Task[] running;
        lock (_lock)
            running = [_accepting, .. _sessions];
        try
        {
            Task.WaitAll(running);
        }
        catch (AggregateException)
        {
            // Sessions end by cancellation; their errors were reported or do not matter at shutdown.
        }
        _stop.Dispose();
    }
}
