using Pagoda.KvCache;

namespace Pagoda.KvEvents;

/// <summary>
/// One step's KV cache events, vLLM's KVEventBatch: when they were taken (seconds since the Unix epoch, as
/// Python's time.time()), the events in order, and the data-parallel rank the publisher stamps (0 here).
/// </summary>
public sealed record KvEventBatch(double Ts, IReadOnlyList<KvCacheEvent> Events, int? DataParallelRank = null)
{
    /// <summary>A batch stamped with the current time.</summary>
    public static KvEventBatch Now(IReadOnlyList<KvCacheEvent> events) =>
        new((DateTime.UtcNow - DateTime.UnixEpoch).Ticks / (double)TimeSpan.TicksPerSecond, events);
}

/// <summary>
/// The payload frame of a KV event message, byte for byte what vLLM's publisher thread sends:
/// msgspec.msgpack.Encoder().encode(KVEventBatch) with the structs of vllm/distributed/kv_events.py declared
/// array_like=True (so omit_defaults drops nothing: msgspec's mpack_encode_struct_array writes every field) and
/// tag=True on the events (the Python class name leads each event's array):
/// <code>
/// [ts: float64, [event, ...], data_parallel_rank]
/// ["BlockStored", [hash, ...], parent_hash | nil, [token, ...], block_size, lora_id | nil, medium | nil, lora_name | nil]
/// ["BlockRemoved", [hash, ...], medium | nil]
/// ["AllBlocksCleared"]
/// </code>
/// Hashes are vLLM's ExternalBlockHash in its integer form (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES, the default): an
/// unsigned 64-bit value, written as msgspec writes a Python int of that size. BlockStored has the eight elements of
/// vLLM's array layout once lora_name was added and before extra_keys was (docs: README, "KV cache events").
/// </summary>
public static class KvEventEncoder
{
    /// <summary>The payload of <paramref name="batch"/>; a null rank is written as nil, as msgspec would.</summary>
    public static byte[] Encode(KvEventBatch batch)
    {
        var w = new MsgpackWriter();
        w.WriteArrayHeader(3);
        w.Write(batch.Ts);
        w.WriteArrayHeader(batch.Events.Count);
        foreach (var e in batch.Events)
            Write(w, e);
        w.WriteOrNil(batch.DataParallelRank);
        return w.ToArray();
    }

    private static void Write(MsgpackWriter w, KvCacheEvent e)
    {
        switch (e)
        {
            case BlockStored s:
                w.WriteArrayHeader(8);
                w.Write("BlockStored");
                WriteHashes(w, s.BlockHashes);
                if (s.ParentBlockHash is { } parent)
                    w.Write(parent);
                else
                    w.WriteNil();
                w.WriteArrayHeader(s.TokenIds.Count);
                foreach (int t in s.TokenIds)
                    w.Write((long)t);
                w.Write((long)s.BlockSize);
                w.WriteOrNil(s.LoraId);
                w.WriteOrNil(s.Medium);
                w.WriteOrNil(s.LoraName);
                break;
            case BlockRemoved r:
                w.WriteArrayHeader(3);
                w.Write("BlockRemoved");
                WriteHashes(w, r.BlockHashes);
                w.WriteOrNil(r.Medium);
                break;
            case AllBlocksCleared:
                w.WriteArrayHeader(1);
                w.Write("AllBlocksCleared");
                break;
            default:
                throw new ArgumentException($"Unknown KV cache event {e.GetType().Name}.");
        }
    }

    private static void WriteHashes(MsgpackWriter w, IReadOnlyList<ulong> hashes)
    {
        w.WriteArrayHeader(hashes.Count);
        foreach (ulong h in hashes)
            w.Write(h);
    }
}
