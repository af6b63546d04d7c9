using Pagoda.KvCache;
using Pagoda.KvEvents;

namespace Pagoda.Tests.KvEvents;

/// <summary>
/// The payload bytes against a sequence written by hand from msgspec's encoder (msgspec/_core.c:
/// mpack_encode_struct_array writes an array_like struct as an array of every field, led by the class name when
/// tagged; ints take their smallest unsigned form; floats are always float64) over the structs of vLLM's
/// vllm/distributed/kv_events.py.
/// </summary>
public class KvEventEncoderTests
{
    private static readonly byte[] BlockStoredTag = [0xab, .. "BlockStored"u8];
    private static readonly byte[] BlockRemovedTag = [0xac, .. "BlockRemoved"u8];
    private static readonly byte[] AllBlocksClearedTag = [0xb0, .. "AllBlocksCleared"u8];
    private static readonly byte[] Gpu = [0xa3, .. "GPU"u8];

    [Fact]
    public void OneBatchIsByteForByteWhatMsgspecWritesForVllmsStructs()
    {
        var batch = new KvEventBatch(1757500000.25,
        [
            new BlockStored([0xDEADBEEF12345678, 5], null, [1, 300, 70000, 127], 2),
            new BlockStored([7], ulong.MaxValue, Enumerable.Range(0, 16).ToArray(), 16),
            new BlockRemoved([1UL << 32]),
            new AllBlocksCleared(),
        ], DataParallelRank: 0);

        byte[] expected =
        [
            0x93,                                                   // KVEventBatch: [ts, events, data_parallel_rank]
            0xcb, 0x41, 0xda, 0x30, 0x54, 0x98, 0x10, 0x00, 0x00,   // ts: float64 1757500000.25
            0x94,                                                   // four events
            0x98, .. BlockStoredTag,                                // BlockStored: tag + 7 fields
            0x92, 0xcf, 0xde, 0xad, 0xbe, 0xef, 0x12, 0x34, 0x56, 0x78, 0x05, //   block_hashes: uint64, fixint
            0xc0,                                                   //   parent_block_hash: None
            0x94, 0x01, 0xcd, 0x01, 0x2c, 0xce, 0x00, 0x01, 0x11, 0x70, 0x7f, // token_ids: fixint, uint16, uint32, fixint
            0x02,                                                   //   block_size
            0xc0,                                                   //   lora_id: None
            .. Gpu,                                                 //   medium
            0xc0,                                                   //   lora_name: None
            0x98, .. BlockStoredTag,
            0x91, 0x07,                                             //   block_hashes
            0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   //   parent_block_hash: 2**64 - 1
            0xdc, 0x00, 0x10, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // token_ids: array16 of 16
            0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
            0x10,                                                   //   block_size 16
            0xc0, .. Gpu, 0xc0,
            0x93, .. BlockRemovedTag,                               // BlockRemoved: tag + block_hashes + medium
            0x91, 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, //   2**32 needs uint64
            .. Gpu,
            0x91, .. AllBlocksClearedTag,                           // AllBlocksCleared: the tag alone
            0x00,                                                   // data_parallel_rank 0
        ];
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(KvEventEncoder.Encode(batch)));
    }

    /// <summary>omit_defaults drops nothing from an array_like struct: a missing rank is a trailing nil.</summary>
    [Fact]
    public void AnUnstampedRankIsATrailingNil()
    {
        byte[] payload = KvEventEncoder.Encode(new KvEventBatch(1.5, []));
        Assert.Equal("93CB3FF800000000000090C0", Convert.ToHexString(payload));
    }

    [Theory]
    [InlineData(0L, "00")]
    [InlineData(127L, "7F")]
    [InlineData(128L, "CC80")]
    [InlineData(255L, "CCFF")]
    [InlineData(256L, "CD0100")]
    [InlineData(65535L, "CDFFFF")]
    [InlineData(65536L, "CE00010000")]
    [InlineData(4294967295L, "CEFFFFFFFF")]
    [InlineData(4294967296L, "CF0000000100000000")]
    [InlineData(-1L, "FF")]
    [InlineData(-32L, "E0")]
    [InlineData(-33L, "D0DF")]
    [InlineData(-128L, "D080")]
    [InlineData(-129L, "D1FF7F")]
    [InlineData(-32769L, "D2FFFF7FFF")]
    [InlineData(long.MinValue, "D38000000000000000")]
    public void IntegersTakeMsgspecsSmallestForm(long value, string hex)
    {
        var w = new MsgpackWriter();
        w.Write(value);
        Assert.Equal(hex, Convert.ToHexString(w.WrittenSpan));
    }

    [Theory]
    [InlineData(31, "BF")]
    [InlineData(32, "D920")]
    [InlineData(255, "D9FF")]
    [InlineData(256, "DA0100")]
    public void StringHeadersFollowTheUtf8Length(int length, string header)
    {
        var w = new MsgpackWriter();
        w.Write(new string('x', length));
        Assert.StartsWith(header, Convert.ToHexString(w.WrittenSpan));
        Assert.Equal(header.Length / 2 + length, w.WrittenSpan.Length);
    }

    [Theory]
    [InlineData(15, "9F")]
    [InlineData(16, "DC0010")]
    [InlineData(65536, "DD00010000")]
    public void ArrayHeadersFollowTheCount(int count, string header)
    {
        var w = new MsgpackWriter();
        w.WriteArrayHeader(count);
        Assert.Equal(header, Convert.ToHexString(w.WrittenSpan));
    }
}
