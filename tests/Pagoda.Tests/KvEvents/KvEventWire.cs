using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using MessagePack;
using NetMQ;
using NetMQ.Sockets;

namespace Pagoda.Tests.KvEvents;

/// <summary>
/// What a vLLM subscriber sees, read without Pagoda's encoder: MessagePack's own reader over the raw payload,
/// checked against vLLM's layout (an array batch [ts, events, rank]; each event an array led by its class name).
/// </summary>
public static class KvEventWire
{
    public sealed record Batch(double Ts, List<List<object?>> Events, object? Rank);

    public sealed record Stored(List<ulong> Hashes, ulong? Parent, List<long> Tokens, long BlockSize, object? LoraId, string? Medium, object? LoraName);

    public static Batch Decode(byte[] payload)
    {
        var r = new MessagePackReader(payload);
        Assert.Equal(3, r.ReadArrayHeader());
        Assert.Equal(MessagePackCode.Float64, r.NextCode); // msgspec writes every Python float as float64
        double ts = r.ReadDouble();
        int n = r.ReadArrayHeader();
        var events = new List<List<object?>>();
        for (int i = 0; i < n; i++)
        {
            var e = Assert.IsType<List<object?>>(ReadAny(ref r));
            Assert.IsType<string>(e[0]);
            events.Add(e);
        }
        object? rank = ReadAny(ref r);
        Assert.True(r.End, "bytes after the batch");
        return new Batch(ts, events, rank);
    }

    public static object? ReadAny(ref MessagePackReader r)
    {
        switch (r.NextMessagePackType)
        {
            case MessagePackType.Nil:
                r.ReadNil();
                return null;
            case MessagePackType.Integer:
                byte code = r.NextCode;
                bool signed = code is >= MessagePackCode.MinNegativeFixInt or MessagePackCode.Int8 or MessagePackCode.Int16
                    or MessagePackCode.Int32 or MessagePackCode.Int64;
                return signed ? r.ReadInt64() : r.ReadUInt64();
            case MessagePackType.Float:
                return r.ReadDouble();
            case MessagePackType.String:
                return r.ReadString();
            case MessagePackType.Array:
                int count = r.ReadArrayHeader();
                var list = new List<object?>(count);
                for (int i = 0; i < count; i++)
                    list.Add(ReadAny(ref r));
                return list;
            default:
                throw new InvalidDataException($"Unexpected msgpack type {r.NextMessagePackType}.");
        }
    }

    /// <summary>A BlockStored event's eight elements, typed.</summary>
    public static Stored AsStored(List<object?> e)
    {
        Assert.Equal("BlockStored", e[0]);
        Assert.Equal(8, e.Count);
        return new Stored(
            ((List<object?>)e[1]!).Select(h => Assert.IsType<ulong>(h)).ToList(),
            e[2] is null ? null : Assert.IsType<ulong>(e[2]),
            ((List<object?>)e[3]!).Select(t => (long)Assert.IsType<ulong>(t)).ToList(),
            (long)Assert.IsType<ulong>(e[4]),
            e[5], (string?)e[6], e[7]);
    }

    /// <summary>A BlockRemoved event's hashes (its three elements checked).</summary>
    public static List<ulong> AsRemoved(List<object?> e)
    {
        Assert.Equal("BlockRemoved", e[0]);
        Assert.Equal(3, e.Count);
        Assert.Equal("GPU", e[2]);
        return ((List<object?>)e[1]!).Select(h => Assert.IsType<ulong>(h)).ToList();
    }

    /// <summary>A loopback port free right now (for sockets that must be told a port before they bind).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static long Seq(byte[] frame)
    {
        Assert.Equal(8, frame.Length);
        return BinaryPrimitives.ReadInt64BigEndian(frame);
    }

    public static byte[] SeqBytes(long seq)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, seq);
        return b;
    }
}

/// <summary>
/// A router's local listener: a SUB socket bound on loopback that the engine's PUB connects to (vLLM connects
/// when the endpoint has no wildcard), receiving [topic, seq, payload] messages.
/// </summary>
public sealed class KvEventSubscriber : IDisposable
{
    private readonly SubscriberSocket _sub = new();

    public KvEventSubscriber(string topicPrefix, int? port = null)
    {
        Port = port ?? 0;
        if (port is { } p)
            _sub.Bind($"tcp://127.0.0.1:{p}");
        else
            Port = _sub.BindRandomPort("tcp://127.0.0.1");
        _sub.Subscribe(topicPrefix);
    }

    public int Port { get; }

    /// <summary>
    /// Two subscribers on consecutive ports (data-parallel replicas publish on port + rank). The first binds a
    /// random port; when its neighbour is taken (another test process), both are dropped and another pair tried.
    /// </summary>
    public static (KvEventSubscriber First, KvEventSubscriber Second) OnConsecutivePorts(string topicPrefix)
    {
        for (int attempt = 0; ; attempt++)
        {
            var first = new KvEventSubscriber(topicPrefix);
            try
            {
                return (first, new KvEventSubscriber(topicPrefix, first.Port + 1));
            }
            catch (NetMQ.AddressAlreadyInUseException) when (attempt < 20)
            {
                first.Dispose();
            }
        }
    }

    public string Endpoint => $"tcp://127.0.0.1:{Port}";

    public (string Topic, long Seq, byte[] Payload)? Receive(TimeSpan timeout)
    {
        NetMQMessage? msg = null;
        if (!_sub.TryReceiveMultipartMessage(timeout, ref msg))
            return null;
        Assert.Equal(3, msg!.FrameCount);
        return (msg[0].ConvertToString(), KvEventWire.Seq(msg[1].ToByteArray()), msg[2].ToByteArray());
    }

    public void Dispose() => _sub.Dispose();
}
