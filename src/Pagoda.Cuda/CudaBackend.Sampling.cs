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
    private PinnedMemory? _samplingDesc;   // 10 longs at a fixed address: what captured graphs read to find the inputs
    private PinnedMemory? _samplingData;   // the inputs themselves, reallocated larger when a step needs it
    private PinnedMemory? _maskFlag;       // the step whose masks are written: sampling_wait holds the device until it is
    private ulong _samplingDescDevice;     // the descriptor's device address, looked up once
    private int _maskStep;
    private (MaskFiller Fill, nint Bits, int Length, int Step)? _pendingMasks;   // a replay's masks, written at FinishReplay

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
                if (s.Masks != null)
                    _k.Launch(_k.SamplingWait, "sampling_wait", S, 1, 1, 1, 32, desc);
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
    // descriptor's device address. Nothing reads the previous step's inputs any more: BeginStep synchronized. Masks
    // are written now, except for a replay: it runs the mask filler once the graph is launched (FinishReplay), and
    // the graph's sampling_wait holds the device until then.
    private ulong StageSamplingInputs(DeviceSamplingInputs s)
    {
        int maskInts = s.Masks != null ? s.Rows * s.MaskWords : 0;
        ReadOnlySpan<int> lengths = [s.Params.Length, s.EditOffsets.Length, s.Edits.Length, s.PenaltyOffsets.Length, s.Penalties.Length, maskInts];
        Span<long> offsets = stackalloc long[lengths.Length];
        long total = 0;
        for (int i = 0; i < lengths.Length; i++)
        {
            offsets[i] = total;
            total += (lengths[i] + 63) & ~63L;   // 256-byte aligned regions
        }
        if (_samplingDesc == null)
        {
            // The descriptor and the flag stay where they are for the backend's life; only the data may move.
            _samplingDesc = new PinnedMemory(128);
            _maskFlag = new PinnedMemory(64);
            _samplingDescDevice = DevicePointer(_samplingDesc);
            ((long*)_samplingDesc.Pointer)[9] = (long)DevicePointer(_maskFlag);
        }
        var desc = new Span<long>(_samplingDesc.Pointer, 10);
        if (_samplingData == null || _samplingData.Bytes < total * 4)
        {
            _samplingData?.Dispose();
            _samplingData = new PinnedMemory(Math.Max(total * 4 * 2, 1L << 20));
            desc[0] = (long)DevicePointer(_samplingData);
        }
        int* data = (int*)_samplingData.Pointer;
        ReadOnlySpan<ReadOnlyMemory<int>> lists = [s.Params, s.EditOffsets, s.Edits, s.PenaltyOffsets, s.Penalties];
        for (int i = 0; i < lists.Length; i++)
            lists[i].Span.CopyTo(new Span<int>(data + offsets[i], lists[i].Length));
        offsets.CopyTo(desc[1..]);
        desc[7] = s.MaskWords;
        desc[8] = ++_maskStep;
        if (s.Masks is { } fill)
        {
            if (_mode == StepMode.Replay)
                _pendingMasks = (fill, (nint)(data + offsets[5]), maskInts, _maskStep);
            else
                WriteMasks(fill, (nint)(data + offsets[5]), maskInts, _maskStep);
        }
        return _samplingDescDevice;
    }

    // Runs the filler into the pinned mask region, then releases sampling_wait (even if the filler threw).
    private void WriteMasks(MaskFiller fill, nint bits, int length, int step)
    {
        try
        {
            fill(new Span<int>((void*)bits, length));
        }
        finally
        {
            ReleaseMasks(step);
        }
    }

    private void ReleaseMasks(int step) => Volatile.Write(ref *(int*)_maskFlag!.Pointer, step);

    // Before a launched replay is waited for: its masks are made now, while the device runs the forward. A replay
    // nobody waits for (its output is dropped) is released without them.
    private void CompletePendingMasks(bool write)
    {
        if (_pendingMasks is not var (fill, bits, length, step))
            return;
        _pendingMasks = null;
        if (write)
            WriteMasks(fill, bits, length, step);
        else
            ReleaseMasks(step);
    }

    private static ulong DevicePointer(PinnedMemory host)
    {
        Driver.Check(Driver.cuMemHostGetDevicePointer(out ulong p, (nint)host.Pointer, 0), "cuMemHostGetDevicePointer_v2");
        return p;
    }
}
