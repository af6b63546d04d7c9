using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Device-side sampling (<see cref="IDeviceSampler"/>): the k best candidates of each row are found on the GPU
/// (two passes: per 2,048-entry chunk, then a merge per row), so a step copies k values and ids per row to the
/// host instead of the whole vocabulary. Processed steps first copy the rows to float, apply the mask, the sparse
/// edits and the penalties there, and add the mass, the whole-row draw and the raw logprob facts (sampling.cu).
/// Also the fused residual-add + RMSNorm for models.
/// </summary>
public sealed unsafe partial class CudaBackend : IDeviceSampler, IFusedNormOps
{
    private const int TopKChunk = 2048;
    private PinnedMemory? _samplingDesc;   // 8 longs at a fixed address: what captured graphs read to find the inputs
    private PinnedMemory? _samplingData;   // the inputs themselves, reallocated larger when a step needs it

    /// <inheritdoc />
    public int MaxCandidates => 64;

    /// <inheritdoc />
    public void ReduceToHost(Tensor logits, DeviceSamplingInputs s, Span<float> dst)
    {
        int k = s.Candidates;
        if (k < 1 || k > MaxCandidates)
            throw new ArgumentOutOfRangeException(nameof(s), k, $"candidates must be in 1..{MaxCandidates}");
        _device.MakeCurrent();
        var t = (CudaTensor)logits;
        int rows = t.Rows, vocab = t.Cols, width = s.RowWidth;
        if (s.Rows != rows)
            throw new ArgumentException($"sampling inputs have {s.Rows} rows, logits {rows}", nameof(s));
        long outBytes = (long)rows * width * sizeof(float);
        if (dst.Length * 4L < outBytes)
            throw new ArgumentException($"destination holds {dst.Length} floats, {rows * width} needed", nameof(dst));
        ulong desc = s.Processed ? StageSamplingInputs(s) : 0;
        using var result = new CudaTensor(DType.F32, [rows, width], _pool.Rent(outBytes), _pool);
        if (!Skip && rows > 0)
        {
            if (!s.Processed)
                TopK(t.Ptr, _k.TopKChunks, rows, vocab, k, result.Ptr, width);
            else
            {
                using var x = new CudaTensor(DType.F32, [rows, vocab], _pool.Rent((long)rows * vocab * 4), _pool);   // processed rows
                _k.Launch(_k.SamplingPrepare, "sampling_prepare", S, (uint)((vocab + 255) / 256), (uint)rows, 1, 256,
                    t.Ptr, x.Ptr, desc, vocab, s.Masks != null ? 1 : 0);
                _k.Launch(_k.SamplingEdits, "sampling_edits", S, (uint)rows, 1, 1, 256, x.Ptr, desc, vocab);
                TopK(x.Ptr, _k.TopKChunksF32, rows, vocab, k, result.Ptr, width);
                _k.Launch(_k.SamplingDraw, "sampling_draw", S, (uint)rows, 1, 1, 1024, x.Ptr, result.Ptr, desc, vocab, k, width);
                if (s.Logprobs)
                {
                    _k.Launch(_k.SamplingRanks, "sampling_ranks", S, (uint)rows, 1, 1, 1024, t.Ptr, result.Ptr, vocab, k, width);
                    TopK(t.Ptr, _k.TopKChunks, rows, vocab, DeviceSamplingInputs.TopLogprobs, result.Ptr + (ulong)(4 * k + 5) * 4, width);
                }
            }
        }
        CopyOut(result.Ptr, outBytes, dst[..(int)(outBytes / 4)]);
    }

    // The k best of each row of `logits` into dst[row·stride ..] (values, then ids).
    private void TopK(ulong logits, nint chunksKernel, int rows, int vocab, int k, ulong dst, int stride)
    {
        int chunks = (vocab + TopKChunk - 1) / TopKChunk;
        using var part = new CudaTensor(DType.F32, [rows * chunks * k, 2], _pool.Rent((long)rows * chunks * k * 8), _pool);
        _k.Launch(chunksKernel, "topk_chunks", S, (uint)chunks, (uint)rows, 1, 256, logits, part.Ptr, vocab, k);
        _k.Launch(_k.TopKMerge, "topk_merge", S, (uint)rows, 1, 1, 256, part.Ptr, dst, chunks, k, stride);
    }

    // Writes the step's inputs into pinned memory (in every mode: they are what a replay reads) and returns the
    // descriptor's device address. Nothing reads the previous step's inputs any more: BeginStep synchronized.
    private ulong StageSamplingInputs(DeviceSamplingInputs s)
    {
        ReadOnlySpan<int[]> regions = [s.Params, s.EditOffsets, s.Edits, s.PenaltyOffsets, s.Penalties, s.Masks ?? []];
        Span<long> offsets = stackalloc long[regions.Length];
        long total = 0;
        for (int i = 0; i < regions.Length; i++)
        {
            offsets[i] = total;
            total += (regions[i].Length + 63) & ~63L;   // 256-byte aligned regions
        }
        if (_samplingData == null || _samplingData.Bytes < total * 4)
        {
            _samplingData?.Dispose();
            _samplingData = new PinnedMemory(Math.Max(total * 4 * 2, 1L << 20));
        }
        _samplingDesc ??= new PinnedMemory(64);
        for (int i = 0; i < regions.Length; i++)
            regions[i].CopyTo(new Span<int>((int*)_samplingData.Pointer + offsets[i], regions[i].Length));
        var desc = new Span<long>(_samplingDesc.Pointer, 8);
        desc[0] = (long)DevicePointer(_samplingData);
        offsets.CopyTo(desc[1..]);
        desc[7] = s.MaskWords;
        return DevicePointer(_samplingDesc);
    }

    private static ulong DevicePointer(PinnedMemory host)
    {
        Driver.Check(Driver.cuMemHostGetDevicePointer(out ulong p, (nint)host.Pointer, 0), "cuMemHostGetDevicePointer_v2");
        return p;
    }
}
