using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Device-side sampling (<see cref="IDeviceSampler"/>): each row is reduced chunk by chunk on the GPU (processed on the
/// way in: the mask, the sparse edits and the penalties), then merged into its k best candidates, so a step copies k
/// values and ids per row to the host instead of the whole vocabulary. Rows that draw over their whole row keep their
/// processed values for the top-p cut and the draw; raw logprob facts come last (sampling.cu). Also the fused
/// residual-add + RMSNorm for models.
/// </summary>
public sealed unsafe partial class CudaBackend : IDeviceSampler, IFusedNormOps
{
    private const int SampleChunk = 4096;   // sampling.cu's SAMPLE_CHUNK
    private const int ChunksProcessed = 1, ChunksMasked = 2, ChunksDraws = 4;   // sample_chunks' flags (SC_*)
    private PinnedMemory? _samplingDesc;   // 11 longs at a fixed address: what captured graphs read to find the inputs
    private PinnedMemory? _samplingData;   // the inputs themselves, reallocated larger when a step needs it
    private DeviceMemory? _samplingCopy;   // sampling_stage's copy of them on the device, as large
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
                TopK(t.Ptr, 0, 0, rows, vocab, k, 0, result.Ptr, width);
            else
            {
                _k.Launch(_k.SamplingStage, "sampling_stage", S, 32, 1, 1, 256, desc);
                if (s.Masks != null)
                    _k.Launch(_k.SamplingWait, "sampling_wait", S, 1, 1, 1, 32, desc);
                int flags = ChunksProcessed | (s.Masks != null ? ChunksMasked : 0) | (s.Draws ? ChunksDraws : 0);
                using var x = s.Draws ? new CudaTensor(DType.F32, [rows, vocab], _pool.Rent((long)rows * vocab * 4), _pool) : null;   // drawing rows, processed
                TopK(t.Ptr, x?.Ptr ?? 0, desc, rows, vocab, k, flags, result.Ptr, width);
                if (s.Draws)
                    Draw(x!.Ptr, result.Ptr, desc, rows, vocab, k, width, s.Cuts);
                else
                    _k.Launch(_k.DrawPick, "draw_pick", S, (uint)rows, 1, 1, 256, 0UL, result.Ptr, 0UL, 0UL, 0UL, desc, vocab, k, width, 0);
                if (s.Logprobs)
                {
                    _k.Launch(_k.SamplingRanks, "sampling_ranks", S, (uint)rows, 1, 1, 1024, t.Ptr, result.Ptr, vocab, k, width);
                    TopK(t.Ptr, 0, 0, rows, vocab, DeviceSamplingInputs.TopLogprobs, 0, result.Ptr + (ulong)(4 * k + 5) * 4, width);
                }
            }
        }
        CopyOut(result.Ptr, outBytes, dst[..(int)(outBytes / 4)]);
    }

    // The k best of each row of `logits` into dst[row·stride ..] (values, then ids): per chunk (processed as `flags`
    // say, drawing rows written to x), then merged per row.
    private void TopK(ulong logits, ulong x, ulong desc, int rows, int vocab, int k, int flags, ulong dst, int stride)
    {
        int chunks = (vocab + SampleChunk - 1) / SampleChunk;
        using var part = new CudaTensor(DType.F32, [rows * chunks * k, 2], _pool.Rent((long)rows * chunks * k * 8), _pool);
        _k.Launch(_k.SampleChunks, "sample_chunks", S, (uint)chunks, (uint)rows, 1, 256, logits, x, part.Ptr, desc, vocab, k, flags);
        _k.Launch(_k.TopKMerge, "topk_merge", S, (uint)rows, 1, 1, 256, part.Ptr, dst, chunks, k, stride);
    }

    // The drawing rows' draws over x (their processed rows): the top-p cut where a row has one (four levels of a
    // radix select, then the ties of the cut's key), each chunk's mass, then the pick (sampling.cu).
    private void Draw(ulong x, ulong result, ulong desc, int rows, int vocab, int k, int width, bool cuts)
    {
        int chunks = (vocab + SampleChunk - 1) / SampleChunk;
        long hist = (long)rows * 256, state = (long)rows * 32, perChunk = (long)rows * chunks;
        using var scratch = new CudaTensor(DType.F32, [1, 1], _pool.Rent(hist * 12 + state + perChunk * 16), _pool);
        ulong hm = scratch.Ptr, hc = hm + (ulong)(hist * 8), st = hc + (ulong)(hist * 4);
        ulong csum = st + (ulong)state, clast = csum + (ulong)(perChunk * 8), cties = clast + (ulong)(perChunk * 4);
        _k.Launch(_k.DrawInit, "draw_init", S, (uint)rows, 1, 1, 256, result, st, hm, hc, desc, width);
        if (cuts)
        {
            for (int level = 0; level < 4; level++)
            {
                _k.Launch(_k.NucleusHist, "nucleus_hist", S, (uint)chunks, (uint)rows, 1, 256, x, result, st, hm, hc, desc, vocab, width, level);
                _k.Launch(_k.NucleusSelect, "nucleus_select", S, (uint)rows, 1, 1, 32, st, hm, hc, desc, level);
            }
            _k.Launch(_k.NucleusTies, "nucleus_ties", S, (uint)chunks, (uint)rows, 1, 256, x, result, st, cties, desc, vocab, width);
            _k.Launch(_k.NucleusTiePick, "nucleus_tie_pick", S, (uint)rows, 1, 1, 256, x, result, st, cties, desc, vocab, width, chunks);
        }
        _k.Launch(_k.DrawSums, "draw_sums", S, (uint)chunks, (uint)rows, 1, 256, x, result, st, csum, clast, desc, vocab, width);
        _k.Launch(_k.DrawPick, "draw_pick", S, (uint)rows, 1, 1, 256, x, result, st, csum, clast, desc, vocab, k, width, chunks);
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
        var desc = new Span<long>(_samplingDesc.Pointer, 11);
        if (_samplingData == null || _samplingData.Bytes < total * 4)
        {
            _samplingData?.Dispose();
            _samplingCopy?.Dispose();
            _samplingData = new PinnedMemory(Math.Max(total * 4 * 2, 1L << 20));
            _samplingCopy = new DeviceMemory(_samplingData.Bytes);
            desc[0] = (long)DevicePointer(_samplingData);
            desc[10] = (long)_samplingCopy.Ptr;
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
