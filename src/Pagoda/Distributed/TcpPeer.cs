using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;

namespace Pagoda.Distributed;

/// <summary>One connection of a <see cref="TcpGroup"/>: framed sends and reads, and (on rank 0) the rank's state.</summary>
internal sealed class TcpPeer(TcpClient client) : IDisposable
{
    private readonly NetworkStream _stream = client.GetStream();
    private readonly byte[] _header = new byte[8];
    private byte[] _frame = new byte[4096];

    public volatile int State;   // 0 starting, 1 ready, 2 failed
    public volatile string? Failure;

    public void Fail(string reason)
    {
        Failure ??= reason;
        State = 2;
    }

    public bool Readable(TimeSpan wait) => client.Client.Poll(wait, SelectMode.SelectRead);

    // One write a frame: a frame in two writes is two packets and two wake-ups on the other side (measured on
    // loopback at fortune-chat's size: the collectives' round trips are most of a step).
    public void Send(int kind, ReadOnlySpan<byte> payload)
    {
        if (_frame.Length < 8 + payload.Length)
            _frame = new byte[Math.Max(8 + payload.Length, 2 * _frame.Length)];
        BinaryPrimitives.WriteInt32LittleEndian(_frame, kind);
        BinaryPrimitives.WriteInt32LittleEndian(_frame.AsSpan(4), payload.Length);
        payload.CopyTo(_frame.AsSpan(8));
        _stream.Write(_frame, 0, 8 + payload.Length);
    }

    public void TrySend(int kind, ReadOnlySpan<byte> payload)
    {
        try
        {
            Send(kind, payload);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    // A frame into buffer (grown to fit): its kind, and its length. A length past maxLength (a hello's, or a GiB: a
    // prefill's all-reduce is a few hundred MB at most) is not from a Pagoda rank: no buffer is made for it.
    public int Receive(ref byte[] buffer, out int length, int maxLength = 1 << 30)
    {
        // Polls before it blocks, as the shared-memory group spins: a blocked read's wake-up is most of a round
        // trip at fortune-chat's size on two cores.
        long start = Stopwatch.GetTimestamp();
        var spin = new SpinWait();
        while (client.Available == 0 && Stopwatch.GetTimestamp() - start < Stopwatch.Frequency / 500)
            spin.SpinOnce(sleep1Threshold: -1);
        _stream.ReadExactly(_header);
        int kind = BinaryPrimitives.ReadInt32LittleEndian(_header);
        length = BinaryPrimitives.ReadInt32LittleEndian(_header.AsSpan(4));
        if (length < 0 || length > maxLength)
            throw new TensorParallelException($"a frame of {length} bytes: the peer is not a Pagoda rank of this group.");
        if (buffer.Length < length)
            buffer = new byte[Math.Max(length, 2 * buffer.Length)];
        _stream.ReadExactly(buffer, 0, length);
        return kind;
    }

    public void Dispose() => client.Dispose();
}
