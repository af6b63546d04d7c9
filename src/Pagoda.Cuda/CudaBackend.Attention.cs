using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>Paged attention: picking the kernel variant and its shared memory, the split buffers, a layer's sinks.</summary>
public sealed unsafe partial class CudaBackend
{
    /// <inheritdoc />
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst)
    {
        var (numHeads, numKvHeads, headDim, scale) = spec;
        ulong sinks = spec.Sinks == null ? 0UL : Sinks(spec.Sinks);
        int group = numHeads / numKvHeads;
        if (headDim % 8 != 0 || headDim > 256 || (headDim > 128 && headDim % 16 != 0) || group > 64)
            throw new NotSupportedException(
                $"CUDA paged attention supports head_dim a multiple of 8 up to 128 (of 16 up to 256) and up to 64 q heads per kv head, not {headDim} and {group}");
        var meta = AttentionMetadata(batch, cache.BlockSize, group, numKvHeads);
        if (Skip) return;
        int variant, threads, nbuf, workers = meta.Workers;
        long smem;
        if (_k.Attention[6] != 0 && (headDim == 64 || headDim == 128))
        {
            // Tensor cores, 4 warps. Decode tiles (one token, the group's q heads, at most 16 rows) spread a
            // tile's work over the warps, several blocks per tile; large decode batches keep one K/V buffer
            // so more blocks share an SM. Other batches: a warp per 16 rows, K/V double-buffered, one block
            // walking all splits.
            bool decode = meta.Workers > 1 && group <= 16;
            variant = (headDim == 64 ? 6 : 7) + (decode ? 2 : 0);
            workers = decode ? meta.Workers : 1;
            threads = 128;
            nbuf = decode && meta.NumTiles * numKvHeads >= 2 * _device.MultiprocessorCount ? 1 : 2;
            smem = 2L * nbuf * AttentionKeys * (headDim + 8) * _elemSize + (decode ? (16 * (AttentionKeys + 4) + 48 + 16 * (AttentionKeys / 2 + 4)) * 4L : 0)
                + (meta.Width * 4L + 15) / 16 * 16; // + the block table
        }
        else
        {
            // CUDA cores. Decode tiles take a block of 8 or 16 rows with one K/V buffer, so more blocks share
            // an SM; other batches take 64-row blocks that double-buffer K/V. Same math per row.
            bool decode = meta.Workers > 1 && group <= 16;
            int rowGroups = decode && group <= 8 ? 8 : 16, rpt = decode ? 1 : 4;
            variant = (decode ? (rowGroups == 8 ? 0 : 2) : 4) + (headDim <= 128 ? 0 : 1);
            threads = rowGroups * 16;
            int rows = rowGroups * rpt;
            long Smem(int buffers) => (long)rows * headDim * _elemSize + 2L * buffers * AttentionKeys * (headDim * _elemSize + 16) + rows * (AttentionKeys + 4) * 4L;
            nbuf = !decode && Smem(2) <= _device.MaxSharedMemoryPerBlock ? 2 : 1;
            smem = Smem(nbuf);
        }
        EnsureDynamicSharedMemory(_k.Attention, _attentionSmem, variant, smem);
        CudaTensor? acc = null, ml = null;
        if (workers > 1)
        {
            long partRows = (long)meta.NumTiles * numKvHeads * meta.MaxSplits * group;
            acc = new CudaTensor(DType.F32, [(int)partRows, headDim], _pool.Rent(partRows * headDim * 4), _pool);
            ml = new CudaTensor(DType.F32, [(int)partRows, 2], _pool.Rent(partRows * 2 * 4), _pool);
        }
        _k.Launch(_k.Attention[variant], "attention", S, (uint)meta.NumTiles, (uint)numKvHeads, (uint)workers, (uint)threads, (uint)smem,
            P(q), P(cache.Keys[layer]), P(cache.Values[layer]), P(dst), acc?.Ptr ?? 0UL, ml?.Ptr ?? 0UL, _attentionCounters.Ptr,
            meta.Tiles, meta.BlockTables, meta.Width, meta.Positions, numHeads, numKvHeads, headDim, cache.BlockSize, scale,
            meta.MaxSplits, nbuf, spec.SlidingWindow, spec.SoftCap, sinks);
        acc?.Dispose();
        ml?.Dispose();
    }

    // A layer's attention sinks, uploaded on first use and kept for the backend's life (the model owns the array,
    // so the same array means the same values; CUDA graphs capture the address).
    private ulong Sinks(float[] sinks)
    {
        if (!_sinks.TryGetValue(sinks, out var m))
        {
            _device.MakeCurrent();
            m = new DeviceMemory(sinks.Length * 4L);
            fixed (float* p = sinks)
                Driver.Check(Driver.cuMemcpyHtoD(m.Ptr, p, (nuint)(sinks.Length * 4)), "cuMemcpyHtoD_v2");
            _sinks[sinks] = m;
        }
        return m.Ptr;
    }

    // Opts a kernel of one family (attention or GEMM variants) into more than 48 KB of dynamic shared memory,
    // once per size.
    private static void EnsureDynamicSharedMemory(nint[] functions, long[] optedIn, int variant, long bytes)
    {
        if (bytes <= 48 * 1024 || optedIn[variant] >= bytes)
            return;
        Driver.Check(Driver.cuFuncSetAttribute(functions[variant], Driver.FuncAttrMaxDynamicSharedSize, (int)bytes), "cuFuncSetAttribute");
        optedIn[variant] = bytes;
    }
}
