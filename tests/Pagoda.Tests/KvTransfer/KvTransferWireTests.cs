using Pagoda.Backends;
using Pagoda.KvTransfer;

namespace Pagoda.Tests.KvTransfer;

/// <summary>PagodaConnector's wire format against bytes written out by hand, and what a reader refuses.</summary>
public class KvTransferWireTests
{
    private static readonly KvLayout Layout = new(DType.F32, 8, 16, 128);

    // "PGKV", version 1, "e1", "r-2", prompt hash 0x0123456789ABCDEF, F32 (0), 8 layers, block size 16, width 128, blocks [3, 258].
    private static readonly byte[] PullBytes =
    [
        0x50, 0x47, 0x4B, 0x56, 0x01, 0x00,
        0x02, 0x00, 0x65, 0x31,
        0x03, 0x00, 0x72, 0x2D, 0x32,
        0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01,
        0x00, 0x08, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00,
    ];

    [Fact]
    public async Task APullIsWrittenAndReadAsTheBytesSay()
    {
        var pull = new KvPullRequest("e1", "r-2", 0x0123456789ABCDEF, Layout, [3, 258]);
        Assert.Equal(PullBytes, KvTransferWire.EncodeRequest(pull));
        var read = await KvTransferWire.ReadRequestAsync(new MemoryStream(PullBytes), CancellationToken.None);
        Assert.Equal(("e1", "r-2", 0x0123456789ABCDEFUL, Layout), (read.EngineId, read.RequestId, read.PromptHash, read.Layout));
        Assert.Equal([3, 258], read.BlockIds);
    }

    [Fact]
    public async Task AnOkAnswerCarriesTheProducersLayoutAndBlockCount()
    {
        // "PGKV", version 1, Ok, BF16 (2), 2 layers, block size 4, width 64, 5 blocks.
        byte[] bytes =
        [
            0x50, 0x47, 0x4B, 0x56, 0x01, 0x00, 0x00,
            0x02, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
        ];
        var layout = new KvLayout(DType.BF16, 2, 4, 64);
        Assert.Equal(bytes, KvTransferWire.EncodeOk(layout, 5));
        var (status, message, read, blocks) = await KvTransferWire.ReadResponseHeaderAsync(new MemoryStream(bytes), CancellationToken.None);
        Assert.Equal((KvPullStatus.Ok, (string?)null, (KvLayout?)layout, 5), (status, message, read, blocks));
        Assert.Equal(4 * 64 * 2, layout.BlockBytes);
    }

    [Fact]
    public async Task ARefusalCarriesItsStatusAndMessage()
    {
        // "PGKV", version 1, UnknownRequest (2), "gone".
        byte[] bytes = [0x50, 0x47, 0x4B, 0x56, 0x01, 0x00, 0x02, 0x04, 0x00, 0x67, 0x6F, 0x6E, 0x65];
        Assert.Equal(bytes, KvTransferWire.EncodeError(KvPullStatus.UnknownRequest, "gone"));
        var (status, message, layout, _) = await KvTransferWire.ReadResponseHeaderAsync(new MemoryStream(bytes), CancellationToken.None);
        Assert.Equal((KvPullStatus.UnknownRequest, "gone", (KvLayout?)null), (status, message, layout));
    }

    public static IEnumerable<object[]> Malformed()
    {
        byte[] With(int at, params byte[] patch)
        {
            var b = PullBytes.ToArray();
            patch.CopyTo(b, at);
            return b;
        }
        yield return [With(0, 0x48, 0x54, 0x54, 0x50), "bad magic"]; // an HTTP client at the wrong port
        yield return [With(4, 0x02), "version 2"];
        yield return [With(23, 0x07), "dtype code 7"];
        yield return [With(24, 0x00, 0x00, 0x01, 0x00), "Implausible layout"];
        yield return [With(36, 0x00, 0x00, 0x00, 0x01), "block count"];
        yield return [With(6, 0x01, 0x10), "longer than"];
    }

    [Theory, MemberData(nameof(Malformed))]
    public async Task MalformedPullsAreRefused(byte[] bytes, string why)
    {
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => KvTransferWire.ReadRequestAsync(new MemoryStream(bytes), CancellationToken.None));
        Assert.Contains(why, e.Message);
    }

    /// <summary>The prompt hash is XxHash3 of the ids as little-endian int32s, so any implementation can compute it.</summary>
    [Fact]
    public void ThePromptHashIsXxHash3OfTheIds()
    {
        byte[] bytes = [0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x7F];
        Assert.Equal(System.IO.Hashing.XxHash3.HashToUInt64(bytes), KvTransferWire.PromptHash([1, int.MaxValue]));
        Assert.NotEqual(KvTransferWire.PromptHash([1, 2]), KvTransferWire.PromptHash([2, 1]));
    }

    [Fact]
    public async Task ACutPullIsAnEndOfStream() =>
        await Assert.ThrowsAsync<EndOfStreamException>(() => KvTransferWire.ReadRequestAsync(new MemoryStream(PullBytes[..^3]), CancellationToken.None));
}
