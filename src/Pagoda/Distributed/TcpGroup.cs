using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Pagoda.Distributed;

/// <summary>
/// A tensor-parallel group across nodes (vLLM's --nnodes with --master-addr / --master-port): rank 0 listens, every
/// other rank connects to it (retrying until rank 0 is up or the join time runs out) and says which rank it is. A star:
/// messages go out from rank 0, collectives gather at rank 0, which sums in rank order and sends the result back, so
/// every rank holds the bits the shared-memory group gives. Frames are [kind, length, payload]; a rank that fails
/// sends its reason, and a closed connection ends any wait for that rank (no hang when a process dies).
/// </summary>
public sealed class TcpGroup : ITensorParallelGroup
{
    private const int Magic = 0x5054_4350;   // "PCTP"
    private const int Hello = 16, Ready = 17, Failed = 18, Data = 19;   // after BatchMessage's kinds
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(5);

    private readonly TcpListener? _listener;
    private readonly TcpPeer?[] _peers;   // rank 0: one per rank (its own null); a worker: [0], rank 0
    private readonly string _address;
    private readonly int _port;
    private readonly long _joinDeadline;
    private readonly TimeSpan _joinTimeout;
    private readonly object _lock = new();
    private byte[]? _job;
    private volatile string? _joinError;   // set by the accepting thread
    private Func<string?> _peerFailure = () => null;
    private byte[] _received = new byte[4096];
    private volatile bool _stopped;   // no more ranks join: all have, or the group ended
    private bool _gotMessage;         // a worker has had rank 0's first message

    private TcpGroup(int rank, int size, string address, int port, TimeSpan joinTimeout, TcpListener? listener)
    {
        (RankIndex, Size, _address, _port, _joinTimeout, _listener) = (rank, size, address, port, joinTimeout, listener);
        _peers = new TcpPeer?[size];
        _joinDeadline = Stopwatch.GetTimestamp() + (long)(joinTimeout.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>
    /// Rank 0 listens at <paramref name="address"/>:<paramref name="port"/> (0: any free port, see <see cref="Port"/>) for
    /// the other <paramref name="size"/> - 1 ranks, which must join within <paramref name="joinTimeout"/>.
    /// </summary>
    public static TcpGroup Listen(string address, int port, int size, TimeSpan joinTimeout)
    {
        if (size < 2)
            throw new ArgumentOutOfRangeException(nameof(size), "a group has at least 2 ranks");
        TcpListener listener;
        try
        {
            var ip = System.Net.Dns.GetHostAddresses(address).FirstOrDefault(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                ?? throw new TensorParallelException($"--master-addr {address} has no IP address.");
            listener = new TcpListener(ip, port);
            listener.Start();
        }
        catch (SocketException e)
        {
            throw new TensorParallelException($"rank 0 cannot listen at {address}:{port}: {e.Message}");
        }
        var group = new TcpGroup(0, size, address, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port, joinTimeout, listener);
        new Thread(group.Accept) { IsBackground = true, Name = "tp-accept" }.Start();
        return group;
    }

    /// <summary>A worker joins rank 0 at <paramref name="address"/>:<paramref name="port"/> as <paramref name="rank"/> of <paramref name="size"/>.</summary>
    public static TcpGroup Connect(string address, int port, int rank, int size, TimeSpan joinTimeout)
    {
        if (rank < 1 || rank >= size)
            throw new ArgumentOutOfRangeException(nameof(rank));
        var group = new TcpGroup(rank, size, address, port, joinTimeout, null);
        while (true)
        {
            var client = new TcpClient { NoDelay = true };
            try
            {
                client.Connect(address, port);
                var peer = new TcpPeer(client);
                Span<byte> hello = stackalloc byte[12];
                BinaryPrimitives.WriteInt32LittleEndian(hello, Magic);
                BinaryPrimitives.WriteInt32LittleEndian(hello[4..], rank);
                BinaryPrimitives.WriteInt32LittleEndian(hello[8..], size);
                peer.Send(Hello, hello);
                group._peers[0] = peer;
                return group;
            }
            catch (SocketException e)
            {
                client.Dispose();
                if (Stopwatch.GetTimestamp() > group._joinDeadline)
                    throw new TensorParallelException($"rank {rank} could not reach rank 0 at {address}:{port} within {joinTimeout.TotalSeconds:F0} s: {e.Message}");
                Thread.Sleep(200);
            }
        }
    }

    /// <inheritdoc />
    public int RankIndex { get; }

    /// <inheritdoc />
    public int Size { get; }

    /// <summary>The port rank 0 listens on.</summary>
    public int Port => _port;

    /// <inheritdoc />
    public IReadOnlyList<string> WorkerArgs(int rank) => JoinArgs(_address, _port, rank, Size, _joinTimeout);

    /// <summary>The `tp-worker` arguments that make a process join rank 0 at <paramref name="address"/>:<paramref name="port"/> as <paramref name="rank"/>.</summary>
    public static string[] JoinArgs(string address, int port, int rank, int size, TimeSpan joinTimeout) =>
        ["--master-addr", address, "--master-port", $"{port}", "--rank", $"{rank}", "--size", $"{size}", "--join-timeout", $"{(int)joinTimeout.TotalSeconds}"];

    /// <inheritdoc />
    public ICommunicator Communicator() => new TcpCommunicator(this);

    // Rank 0 takes connections until every rank has joined (or the group ends); each says who it is, gets the job,
    // and is read until it reports ready or failed.
    private void Accept()
    {
        while (!_stopped)
        {
            TcpClient client;
            try
            {
                client = _listener!.AcceptTcpClient();
            }
            catch (Exception e) when (_stopped || e is ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            client.NoDelay = true;
            client.ReceiveTimeout = (int)HelloTimeout.TotalMilliseconds;   // a connection that says nothing must not hold up the ranks
            var peer = new TcpPeer(client);
            try
            {
                byte[] buffer = new byte[64];
                int kind = peer.Receive(ref buffer, out int length, maxLength: 64);
                client.ReceiveTimeout = 0;
                var hello = buffer.AsSpan(0, length);
                if (kind != Hello || length != 12 || BinaryPrimitives.ReadInt32LittleEndian(hello) != Magic)
                {
                    peer.Dispose();   // not a Pagoda rank
                    continue;
                }
                int rank = BinaryPrimitives.ReadInt32LittleEndian(hello[4..]), size = BinaryPrimitives.ReadInt32LittleEndian(hello[8..]);
                string? refusal = size != Size ? $"a rank joined as one of {size} ranks; rank 0 has --tensor-parallel-size {Size}."
                    : rank < 1 || rank >= Size ? $"a rank joined as rank {rank}, outside 1..{Size - 1}."
                    : _peers[rank] != null ? $"two processes joined as rank {rank}." : null;
                if (refusal != null)
                {
                    peer.TrySend(Failed, Encoding.UTF8.GetBytes(refusal));
                    peer.Dispose();
                    _joinError ??= refusal;
                    continue;
                }
                lock (_lock)
                {
                    _peers[rank] = peer;
                    if (_job != null)
                        peer.Send(BatchMessage.Job, _job);
                }
                new Thread(() => WatchStartup(peer, rank)) { IsBackground = true, Name = $"tp-join-{rank}" }.Start();
            }
            catch (Exception e) when (e is IOException or SocketException or TensorParallelException)
            {
                peer.Dispose();
            }
        }
    }

    private static void WatchStartup(TcpPeer peer, int rank)
    {
        byte[] buffer = new byte[1024];
        try
        {
            int kind = peer.Receive(ref buffer, out int length);
            if (kind == Ready)
                peer.State = 1;
            else
                peer.Fail(kind == Failed ? Encoding.UTF8.GetString(buffer, 0, length) : $"sent frame {kind} before it was ready");
        }
        catch (Exception e) when (e is IOException or SocketException or TensorParallelException or ObjectDisposedException)
        {
            peer.Fail($"closed its connection while starting ({e.Message})");
        }
    }

    /// <inheritdoc />
    public void Post(int kind, ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            if (kind == BatchMessage.Job)
                _job = payload.ToArray();
            for (int r = 1; r < Size; r++)
            {
                if (_peers[r] is not { } peer)
                    continue;
                try
                {
                    peer.Send(kind, payload);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    if (kind != BatchMessage.Shutdown)
                        throw Gone(r, e);
                }
            }
        }
    }

    /// <inheritdoc />
    public int Receive(out ReadOnlySpan<byte> payload)
    {
        var peer = _peers[0]!;
        while (!peer.Readable(TimeSpan.FromMilliseconds(50)))
        {
            if (_peerFailure() is { } failure)
                throw new TensorParallelException(failure);
            // Rank 0 sends the job as a rank joins: a listener that sends nothing is not a Pagoda rank 0.
            if (!_gotMessage && Stopwatch.GetTimestamp() > _joinDeadline)
                throw new TensorParallelException($"{_address}:{_port} sent no job within {_joinTimeout.TotalSeconds:F0} s: is it a Pagoda rank 0?");
        }
        _gotMessage = true;
        return ReceiveFrom(0, out payload);
    }

    /// <inheritdoc />
    public void ReportReady() => _peers[0]!.Send(Ready, []);

    /// <inheritdoc />
    public void ReportFailure(string reason)
    {
        if (_peers[0] is { } peer)
            peer.TrySend(Failed, Encoding.UTF8.GetBytes(reason.Split('\n')[0]));
    }

    /// <inheritdoc />
    public int StateOf(int rank) => _peers[rank]?.State ?? 0;

    /// <inheritdoc />
    public string? FailureOf(int rank) => _peers[rank]?.Failure;

    /// <inheritdoc />
    public void WatchPeers(Func<string?> peerFailure) => _peerFailure = peerFailure;

    /// <inheritdoc />
    public void CheckPeers()
    {
        if (_peerFailure() is { } failure)
            throw new TensorParallelException(failure);
        if (_joinError is { } refusal)
            throw new TensorParallelException(refusal);
    }

    /// <inheritdoc />
    public void WaitUntil(Func<bool> done, bool idle)
    {
        while (!done())
        {
            CheckPeers();
            if (RankIndex == 0 && Stopwatch.GetTimestamp() > _joinDeadline
                && Enumerable.Range(1, Size - 1).Where(r => _peers[r] == null).ToList() is { Count: > 0 } missing)
                throw new TensorParallelException($"tensor-parallel rank{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} did not join rank 0 at "
                    + $"{_address}:{_port} within {_joinTimeout.TotalSeconds:F0} s (start the other nodes with --headless --nnodes, --node-rank, --master-addr and --master-port).");
            Thread.Sleep(idle ? 5 : 1);
        }
    }

    /// <inheritdoc />
    public void Joined()
    {
        _stopped = true;
        _listener?.Stop();
    }

    /// <summary>Sends a collective's data to <paramref name="rank"/> (a worker sends to 0).</summary>
    internal void SendData(int rank, ReadOnlySpan<byte> data)
    {
        try
        {
            _peers[rank]!.Send(Data, data);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            throw Gone(rank, e);
        }
    }

    /// <summary>Reads a collective's data from <paramref name="rank"/>: valid until the next read.</summary>
    internal ReadOnlySpan<byte> ReceiveData(int rank)
    {
        int kind = ReceiveFrom(rank, out var payload);
        return kind == Data ? payload : throw new TensorParallelException($"{Who(rank)} sent frame {kind} inside a collective: the group is out of step.");
    }

    private int ReceiveFrom(int rank, out ReadOnlySpan<byte> payload)
    {
        var peer = _peers[rank]!;
        try
        {
            int kind = peer.Receive(ref _received, out int length);
            payload = _received.AsSpan(0, length);
            if (kind == Failed)
            {
                string reason = Encoding.UTF8.GetString(payload);
                peer.Fail(reason);
                throw new TensorParallelException($"{Who(rank)} failed: {reason}");
            }
            return kind;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            throw Gone(rank, e);
        }
    }

    // A read or write that failed: the peer's process or node is gone.
    private TensorParallelException Gone(int rank, Exception e)
    {
        _peers[rank]?.Fail($"closed its connection ({e.Message})");
        return new TensorParallelException($"{Who(rank)} closed its connection (it exited or its node is gone).");
    }

    private static string Who(int rank) => rank == 0 ? "rank 0" : $"tensor-parallel worker {rank}";

    /// <inheritdoc />
    public void Dispose()
    {
        Joined();
        foreach (var p in _peers)
            p?.Dispose();
    }
}
