using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>The CPU backend's block copies for KV transfers: whole blocks, by id, keys and values apart, bounds checked.</summary>
public class CpuKvBlockCopyTests
{
    [Fact]
    public void BlocksWrittenFromHostReadBackByIdInAnyOrder()
    {
        using var backend = new CpuBackend();
        using var cache = backend.AllocateKvCache(numLayers: 2, numBlocks: 8, blockSize: 4, kvWidth: 6);
        Assert.Equal((2, DType.F32, 6, 4L * 6 * 4), (cache.NumLayers, cache.DType, cache.KvWidth, cache.BlockBytes));
        int n = (int)cache.BlockBytes;
        byte[] keys = Enumerable.Range(0, 2 * n).Select(i => (byte)i).ToArray();
        byte[] values = keys.Select(b => (byte)(255 - b)).ToArray();
        backend.CopyKvBlocksFromHost(cache, 1, [5, 2], keys, values);

        var k = new byte[n];
        var v = new byte[n];
        backend.CopyKvBlocksToHost(cache, 1, [2], k, v);
        Assert.Equal(keys[n..], k);
        Assert.Equal(values[n..], v);
        var k2 = new byte[2 * n];
        var v2 = new byte[2 * n];
        backend.CopyKvBlocksToHost(cache, 1, [5, 2], k2, v2);
        Assert.Equal(keys, k2);
        Assert.Equal(values, v2);
        // A block's rows are slots blockId × blockSize onwards: row 8 (block 2, offset 0) holds block 2's first float.
        Assert.Equal(BitConverter.ToSingle(keys, n), BitConverter.ToSingle(AsBytes(cache.Keys[1], 8 * 6 * 4, 4)));
    }

    [Fact]
    public void IdsOutsideThePoolAndWrongBufferSizesThrow()
    {
        using var backend = new CpuBackend();
        using var cache = backend.AllocateKvCache(1, 4, 2, 2);
        var buffer = new byte[cache.BlockBytes];
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.CopyKvBlocksToHost(cache, 0, [4], buffer, buffer));
        Assert.Throws<ArgumentException>(() => backend.CopyKvBlocksToHost(cache, 0, [0, 1], buffer, buffer));
    }

    private static byte[] AsBytes(Tensor t, int offset, int count)
    {
        var copy = new float[t.NumElements];
        using var backend = new CpuBackend();
        backend.CopyToHost(t, copy);
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(copy.AsSpan()).Slice(offset, count).ToArray();
    }
}
