using System.Buffers.Binary;
using System.Text;
using Pagoda.Backends;

namespace Pagoda.KvTransfer;

/// <summary>The shape of a KV pool that both ends of a transfer must share, or the bytes would mean nothing.</summary>
public sealed record KvLayout(DType DType, int NumLayers, int BlockSize, int KvWidth)
{
    /// <summary>Bytes of one block's keys (or values) in one layer.</summary>
    public long BlockBytes => (long)BlockSize * KvWidth * DTypes.SizeOf(DType);

    /// <summary>The layout of a pool.</summary>
    public static KvLayout Of(PagedKvCache cache) => new(cache.DType, cache.NumLayers, cache.BlockSize, cache.KvWidth);

    /// <inheritdoc />
    public override string ToString() => $"{DType}, {NumLayers} layers, blocks of {BlockSize} tokens, KV width {KvWidth}";
}

/// <summary>
/// A consumer's pull: these blocks of that request, held by that engine, in a pool of this layout, for a prompt of this
/// hash (<see cref="KvTransferWire.PromptHash"/>: a decode must carry its prefill's prompt, or the KV belongs to another text).
/// </summary>
public sealed record KvPullRequest(string EngineId, string RequestId, ulong PromptHash, KvLayout Layout, int[] BlockIds);

/// <summary>The producer's answer to a pull.</summary>
public enum KvPullStatus : byte
{
    /// <summary>The blocks follow.</summary>
    Ok = 0,
    /// <summary>The pull names another engine (a stale address now served by another instance).</summary>
    UnknownEngine = 1,
    /// <summary>No blocks are held for the request: never, already pulled, or released after the timeout.</summary>
    UnknownRequest = 2,
    /// <summary>The pull asks for blocks the request does not hold.</summary>
    BadBlocks = 3,
    /// <summary>The pools differ in dtype, layers, block size or KV width.</summary>
    LayoutMismatch = 4,
    /// <summary>Another pull of the same request is under way.</summary>
    Busy = 5,
    /// <summary>The pull could not be read.</summary>
    Malformed = 6,
    /// <summary>The decode's prompt is not the one the producer prefilled.</summary>
    PromptMismatch = 7,
}

/// <summary>
/// PagodaConnector's wire format, little-endian throughout. A pull: "PGKV", version u16, engine id and request id (each
/// a u16 byte count and UTF-8), the prompt's hash u64, the consumer's layout (dtype u8, layers u32, block size u32, KV width u32), the block
/// count u32 and each block id u32. The answer: "PGKV", version u16, status u8; then either a u16-counted UTF-8 message
/// (an error) or the producer's layout and block count followed, layer by layer, by the keys then the values of the
/// blocks in the order asked, each block's rows contiguous. The producer closes the connection after it.
/// </summary>
public static class KvTransferWire
{
    /// <summary>The first bytes of every message.</summary>
    public static ReadOnlySpan<byte> Magic => "PGKV"u8;

    /// <summary>The protocol version; a different one is refused.</summary>
    public const ushort Version = 1;

    /// <summary>Longest engine or request id, in UTF-8 bytes.</summary>
    public const int MaxIdBytes = 1024;

    /// <summary>Most blocks one pull may ask for (hostile input must not make the producer allocate without bound).</summary>
    public const int MaxBlocks = 1 << 20;

    /// <summary>Most layers a layout may have.</summary>
    public const int MaxLayers = 4096;

    /// <summary>The encoded pull.</summary>
    public static byte[] EncodeRequest(KvPullRequest request)
    {
        var w = new MemoryStream();
        WriteHeader(w);
        WriteString(w, request.EngineId);
        WriteString(w, request.RequestId);
        Span<byte> hash = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(hash, request.PromptHash);
        w.Write(hash);
        WriteLayout(w, request.Layout);
        WriteU32(w, (uint)request.BlockIds.Length);
        foreach (int id in request.BlockIds)
            WriteU32(w, checked((uint)id));
        return w.ToArray();
    }

    /// <summary>Reads a pull; a malformed one is an <see cref="InvalidDataException"/>, a short one an <see cref="EndOfStreamException"/>.</summary>
    public static async Task<KvPullRequest> ReadRequestAsync(Stream stream, CancellationToken ct)
    {
        await ReadHeaderAsync(stream, ct);
        string engineId = await ReadStringAsync(stream, ct);
        string requestId = await ReadStringAsync(stream, ct);
        ulong promptHash = BinaryPrimitives.ReadUInt64LittleEndian(await ReadBytesAsync(stream, 8, ct));
        var layout = await ReadLayoutAsync(stream, ct);
        int count = await ReadCountAsync(stream, MaxBlocks, "block count", ct);
        var raw = new byte[count * 4];
        await stream.ReadExactlyAsync(raw, ct);
        var ids = new int[count];
        for (int i = 0; i < count; i++)
        {
            uint id = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * 4));
            ids[i] = id <= int.MaxValue ? (int)id : throw new InvalidDataException($"Block id {id} is out of range.");
        }
        return new KvPullRequest(engineId, requestId, promptHash, layout, ids);
    }

    /// <summary>XxHash3 of the prompt's token ids (int32, little-endian): what a pull's prompt is checked by.</summary>
    public static ulong PromptHash(IReadOnlyList<int> tokenIds)
    {
        var bytes = new byte[tokenIds.Count * 4];
        for (int i = 0; i < tokenIds.Count; i++)
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), tokenIds[i]);
        return System.IO.Hashing.XxHash3.HashToUInt64(bytes);
    }

    /// <summary>The header of a successful answer; the blocks follow it.</summary>
    public static byte[] EncodeOk(KvLayout layout, int numBlocks)
    {
        var w = new MemoryStream();
        WriteHeader(w);
        w.WriteByte((byte)KvPullStatus.Ok);
        WriteLayout(w, layout);
        WriteU32(w, (uint)numBlocks);
        return w.ToArray();
    }

    /// <summary>A refusal: its status and a message for the consumer's error (cut to fit).</summary>
    public static byte[] EncodeError(KvPullStatus status, string message)
    {
        var w = new MemoryStream();
        WriteHeader(w);
        w.WriteByte((byte)status);
        WriteString(w, message.Length > 300 ? message[..300] : message); // 300 chars fit MaxIdBytes in any UTF-8
        return w.ToArray();
    }

    /// <summary>Reads an answer's header: Ok with the producer's layout and block count, or a refusal with its message.</summary>
    public static async Task<(KvPullStatus Status, string? Message, KvLayout? Layout, int NumBlocks)> ReadResponseHeaderAsync(Stream stream, CancellationToken ct)
    {
        await ReadHeaderAsync(stream, ct);
        var status = (KvPullStatus)(await ReadBytesAsync(stream, 1, ct))[0];
        if (!Enum.IsDefined(status))
            throw new InvalidDataException($"Unknown status {(byte)status}.");
        if (status != KvPullStatus.Ok)
            return (status, await ReadStringAsync(stream, ct), null, 0);
        var layout = await ReadLayoutAsync(stream, ct);
        return (status, null, layout, await ReadCountAsync(stream, MaxBlocks, "block count", ct));
    }

    /// <summary>The dtype's code on the wire (its own table, so reordering the enum cannot change the protocol).</summary>
    public static byte DTypeCode(DType dtype) => dtype switch
    {
        DType.F32 => 0,
        DType.F16 => 1,
        DType.BF16 => 2,
        _ => throw new ArgumentException($"A KV pool of {dtype} cannot be transferred."),
    };

    private static DType DTypeOf(byte code) => code switch
    {
        0 => DType.F32,
        1 => DType.F16,
        2 => DType.BF16,
        _ => throw new InvalidDataException($"Unknown dtype code {code}."),
    };

    private static void WriteHeader(Stream w)
    {
        w.Write(Magic);
        Span<byte> v = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(v, Version);
        w.Write(v);
    }

    private static void WriteLayout(Stream w, KvLayout layout)
    {
        w.WriteByte(DTypeCode(layout.DType));
        WriteU32(w, (uint)layout.NumLayers);
        WriteU32(w, (uint)layout.BlockSize);
        WriteU32(w, (uint)layout.KvWidth);
    }

    private static void WriteString(Stream w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length > MaxIdBytes)
            throw new ArgumentException($"'{s[..32]}...' is longer than {MaxIdBytes} UTF-8 bytes.");
        Span<byte> n = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(n, (ushort)bytes.Length);
        w.Write(n);
        w.Write(bytes);
    }

    private static void WriteU32(Stream w, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        w.Write(b);
    }

    private static async Task ReadHeaderAsync(Stream stream, CancellationToken ct)
    {
        var b = await ReadBytesAsync(stream, 6, ct);
        if (!b.AsSpan(0, 4).SequenceEqual(Magic))
            throw new InvalidDataException("Not a PagodaConnector message (bad magic).");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(4));
        if (version != Version)
            throw new InvalidDataException($"PagodaConnector protocol version {version} is not supported (this instance speaks {Version}).");
    }

    private static async Task<KvLayout> ReadLayoutAsync(Stream stream, CancellationToken ct)
    {
        var b = await ReadBytesAsync(stream, 13, ct);
        var dtype = DTypeOf(b[0]);
        uint layers = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(1));
        uint blockSize = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(5));
        uint width = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(9));
        if (layers > MaxLayers || blockSize is 0 or > 1024 || width is 0 or > 1 << 20)
            throw new InvalidDataException($"Implausible layout: {layers} layers, block size {blockSize}, KV width {width}.");
        return new KvLayout(dtype, (int)layers, (int)blockSize, (int)width);
    }

    private static async Task<string> ReadStringAsync(Stream stream, CancellationToken ct)
    {
        var n = await ReadBytesAsync(stream, 2, ct);
        int length = BinaryPrimitives.ReadUInt16LittleEndian(n);
        if (length > MaxIdBytes)
            throw new InvalidDataException($"A string of {length} bytes is longer than {MaxIdBytes}.");
        return Encoding.UTF8.GetString(await ReadBytesAsync(stream, length, ct));
    }

    private static async Task<int> ReadCountAsync(Stream stream, int max, string what, CancellationToken ct)
    {
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(await ReadBytesAsync(stream, 4, ct));
        return n <= max ? (int)n : throw new InvalidDataException($"The {what} {n} is more than {max}.");
    }

    private static async Task<byte[]> ReadBytesAsync(Stream stream, int count, CancellationToken ct)
    {
        var b = new byte[count];
        await stream.ReadExactlyAsync(b, ct);
        return b;
    }
}
