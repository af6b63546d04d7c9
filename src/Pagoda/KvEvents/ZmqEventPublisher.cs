using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using NetMQ;
using NetMQ.Sockets;

namespace Pagoda.KvEvents;

/// <summary>
/// vLLM's ZmqEventPublisher (vllm/distributed/kv_events.py) over NetMQ: a PUB socket sends each batch as the
/// frames [topic, sequence number as 8 bytes big-endian, msgpack payload]; the last <c>buffer_steps</c> payloads
/// are kept, and a ROUTER socket answers a replay request [identity, empty, start sequence (big-endian)] with
/// [identity, empty, seq, payload] for every kept batch from there on, then the end marker [identity, empty,
/// -1 as 8 bytes, empty]. The engine thread only queues; encoding and every socket live on one poller thread.
/// </summary>
/// <remarks>
/// Where vLLM blocks the engine when its queue is full, this drops the batch with a warning, and the dropped batch
/// still takes its sequence number: a subscriber sees the gap (and a replay from it starts after the lost batch).
/// </remarks>
public sealed class ZmqEventPublisher : IKvEventPublisher
{
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(1); // vLLM's SHUTDOWN_TIMEOUT
    private static readonly byte[] EndSeq = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]; // (-1).to_bytes(8, "big", signed=True)

    private readonly PublisherSocket _pub;
    private readonly int _rank;
    private readonly RouterSocket? _replay;
    private readonly NetMQQueue<(long Seq, KvEventBatch Batch)> _queue = new();
    private readonly NetMQPoller _poller;
    private readonly byte[] _topic;
    private readonly Queue<(long Seq, byte[] Payload)> _buffer = new(); // poller thread only
    private readonly int _bufferSteps, _maxQueueSize;
    private readonly Action<string> _warn;
    private long _nextSeq, _dropped, _lastDropWarning;
    private int _pending, _disposed;

    /// <summary>Binds (or connects) the sockets the config names and starts the sending thread.</summary>
    public ZmqEventPublisher(KvEventsConfig config, Action<string> warn, int dataParallelRank = 0)
    {
        _warn = warn;
        _rank = dataParallelRank;
        _topic = System.Text.Encoding.UTF8.GetBytes(config.Topic);
        _bufferSteps = config.BufferSteps;
        _maxQueueSize = config.MaxQueueSize;
        _pub = new PublisherSocket();
        try
        {
            _pub.Options.SendHighWatermark = config.Hwm;
            _pub.Options.Linger = TimeSpan.Zero;
            Attach(_pub, config.Endpoint, "endpoint");
            if (config.ReplayEndpoint != null)
            {
                _replay = new RouterSocket();
                _replay.Options.Linger = TimeSpan.Zero;
                Attach(_replay, config.ReplayEndpoint, "replay_endpoint", bind: true);
                _replay.ReceiveReady += (_, _) => ServiceReplay();
            }
        }
        catch
        {
            _pub.Dispose();
            _replay?.Dispose();
            _queue.Dispose();
            throw;
        }
        _queue.ReceiveReady += (_, _) => Drain();
        _poller = new NetMQPoller { _queue };
        if (_replay != null)
            _poller.Add(_replay);
        _poller.RunAsync("pagoda-kv-events", isBackgroundThread: true);
    }

    /// <summary>Batches dropped because the queue was full.</summary>
    public long DroppedBatches => Interlocked.Read(ref _dropped);

    /// <summary>
    /// vLLM's rule for the PUB endpoint: bind when it has a wildcard (`*`, `::`) or is ipc:// or inproc://,
    /// otherwise connect (a subscriber that binds, such as a router's local listener).
    /// </summary>
    public static bool Binds(string endpoint) =>
        endpoint.Contains('*') || endpoint.Contains("::", StringComparison.Ordinal)
        || endpoint.StartsWith("ipc://", StringComparison.Ordinal) || endpoint.StartsWith("inproc://", StringComparison.Ordinal);

    /// <summary>Queues a batch under the next sequence number (one caller at a time: the engine thread).</summary>
    public void Publish(KvEventBatch batch)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        long seq = _nextSeq++;
        if (_maxQueueSize > 0 && Volatile.Read(ref _pending) >= _maxQueueSize)
        {
            long dropped = Interlocked.Increment(ref _dropped);
            WarnDropped(seq, dropped);
            return;
        }
        Interlocked.Increment(ref _pending);
        // vLLM's publish() stamps its data-parallel rank on a batch that has none.
        _queue.Enqueue((seq, batch.DataParallelRank is null ? batch with { DataParallelRank = _rank } : batch));
    }

    private static void Attach(NetMQSocket socket, string endpoint, string field, bool bind = false)
    {
        try
        {
            if (bind || Binds(endpoint))
                socket.Bind(endpoint);
            else
                socket.Connect(endpoint);
        }
        catch (Exception e) when (e is NetMQException or ArgumentException or System.Net.Sockets.SocketException)
        {
            throw new ArgumentException($"--kv-events-config: cannot {(bind || Binds(endpoint) ? "bind" : "connect")} {field} '{endpoint}': {e.Message}");
        }
    }

    // Poller thread: encode and send everything queued, keeping each payload for replay.
    private void Drain()
    {
        while (_queue.TryDequeue(out var item, TimeSpan.Zero))
        {
            try
            {
                byte[] payload = KvEventEncoder.Encode(item.Batch);
                _pub.SendMoreFrame(_topic).SendMoreFrame(SeqBytes(item.Seq)).SendFrame(payload);
                if (_bufferSteps > 0)
                {
                    if (_buffer.Count == _bufferSteps)
                        _buffer.Dequeue();
                    _buffer.Enqueue((item.Seq, payload));
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _warn($"KV events: publishing batch {item.Seq} failed: {e.Message}");
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    // Poller thread: one replay request, answered from the buffer (vLLM's _service_replay).
    private void ServiceReplay()
    {
        var replay = _replay!;
        var request = replay.ReceiveMultipartMessage();
        if (request.FrameCount != 3)
        {
            _warn($"KV events: invalid replay request of {request.FrameCount} frames (expected identity, empty, start sequence).");
            return;
        }
        byte[] client = request[0].ToByteArray();
        var start = new BigInteger(request[2].ToByteArray(), isUnsigned: true, isBigEndian: true);
        foreach (var (seq, payload) in _buffer)
        {
            if (seq >= start)
                replay.SendMoreFrame(client).SendMoreFrameEmpty().SendMoreFrame(SeqBytes(seq)).SendFrame(payload);
        }
        replay.SendMoreFrame(client).SendMoreFrameEmpty().SendMoreFrame(EndSeq).SendFrameEmpty();
    }

    private static byte[] SeqBytes(long seq)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, seq);
        return bytes;
    }

    // The first drop, then at most one warning every ten seconds.
    private void WarnDropped(long seq, long dropped)
    {
        long now = Stopwatch.GetTimestamp();
        if (dropped > 1 && Stopwatch.GetElapsedTime(_lastDropWarning, now) < TimeSpan.FromSeconds(10))
            return;
        _lastDropWarning = now;
        _warn($"KV events: the publish queue is full (max_queue_size {_maxQueueSize}); dropped batch {seq} ({dropped} dropped so far).");
    }

    /// <summary>Sends what is queued (waiting up to a second, as vLLM's shutdown), then closes the sockets.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        var waited = Stopwatch.StartNew();
        while (Volatile.Read(ref _pending) > 0 && waited.Elapsed < ShutdownTimeout)
            Thread.Sleep(10);
        if (Volatile.Read(ref _pending) is > 0 and var left)
            _warn($"KV events: {left} batches still queued after {ShutdownTimeout.TotalSeconds:0.#} s; closing.");
        _poller.Stop();
        _poller.Dispose();
        _queue.Dispose();
        _pub.Dispose();
        _replay?.Dispose();
    }
}
