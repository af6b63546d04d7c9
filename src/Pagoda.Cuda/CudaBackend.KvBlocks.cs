using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// KV blocks between the device pool and host memory for disaggregated prefill's transfers: one DtoH or HtoD copy per
/// block (a block's rows are contiguous), on a stream of their own, waited for before returning. They run on the
/// connector's threads, so the context is made current there; the engine's stream is non-blocking and the blocks
/// copied are ones no kernel touches meanwhile, so nothing orders the two streams. Not run on a GPU yet: the CPU
/// backend's copies are what the transfer tests exercise.
/// </summary>
public sealed unsafe partial class CudaBackend : IKvBlockCopy
{
    private readonly Lock _kvCopyLock = new();
    private StreamHandle? _kvCopyStream;

    /// <inheritdoc />
    public void CopyKvBlocksToHost(PagedKvCache cache, int layer, ReadOnlySpan<int> blockIds, Span<byte> keys, Span<byte> values)
    {
        nuint bytes = CheckedBlockBytes(cache, blockIds, keys.Length, values.Length);
        lock (_kvCopyLock)
        {
            nint s = KvCopyStream();
            fixed (byte* k = keys, v = values)
            {
                for (int i = 0; i < blockIds.Length; i++)
                {
                    ulong offset = (ulong)blockIds[i] * bytes;
                    Driver.Check(Driver.cuMemcpyDtoHAsync(k + (nuint)i * bytes, ((CudaTensor)cache.Keys[layer]).Ptr + offset, bytes, s), "cuMemcpyDtoHAsync");
                    Driver.Check(Driver.cuMemcpyDtoHAsync(v + (nuint)i * bytes, ((CudaTensor)cache.Values[layer]).Ptr + offset, bytes, s), "cuMemcpyDtoHAsync");
                }
                // The host buffers are pinned only inside this block: the copies must be done before it ends.
                Driver.Check(Driver.cuStreamSynchronize(s), "cuStreamSynchronize");
            }
        }
    }

    /// <inheritdoc />
    public void CopyKvBlocksFromHost(PagedKvCache cache, int layer, ReadOnlySpan<int> blockIds, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values)
    {
        nuint bytes = CheckedBlockBytes(cache, blockIds, keys.Length, values.Length);
        lock (_kvCopyLock)
        {
            nint s = KvCopyStream();
            fixed (byte* k = keys, v = values)
            {
                for (int i = 0; i < blockIds.Length; i++)
                {
                    ulong offset = (ulong)blockIds[i] * bytes;
                    Driver.Check(Driver.cuMemcpyHtoDAsync(((CudaTensor)cache.Keys[layer]).Ptr + offset, k + (nuint)i * bytes, bytes, s), "cuMemcpyHtoDAsync");
                    Driver.Check(Driver.cuMemcpyHtoDAsync(((CudaTensor)cache.Values[layer]).Ptr + offset, v + (nuint)i * bytes, bytes, s), "cuMemcpyHtoDAsync");
                }
                // Done before returning: the engine schedules the request (and its kernels read the blocks) once this has.
                Driver.Check(Driver.cuStreamSynchronize(s), "cuStreamSynchronize");
            }
        }
    }

    // Made on first use, on whichever thread copies first, with the device's context current there.
    private nint KvCopyStream()
    {
        _device.MakeCurrent();
        return (_kvCopyStream ??= new StreamHandle()).Stream;
    }

    private static nuint CheckedBlockBytes(PagedKvCache cache, ReadOnlySpan<int> blockIds, int keyBytes, int valueBytes)
    {
        long bytes = cache.BlockBytes;
        foreach (int id in blockIds)
        {
            if ((uint)id >= (uint)cache.NumBlocks)
                throw new ArgumentOutOfRangeException(nameof(blockIds), $"Block {id} is outside the pool of {cache.NumBlocks}.");
        }
        if (keyBytes != blockIds.Length * bytes || valueBytes != keyBytes)
            throw new ArgumentException($"{blockIds.Length} blocks of {bytes} bytes need buffers of {blockIds.Length * bytes} bytes.");
        return (nuint)bytes;
    }
}
