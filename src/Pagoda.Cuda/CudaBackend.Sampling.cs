using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Device-side sampling (<see cref="IDeviceSampler"/>): each row is reduced chunk by chunk on the GPU (processed on the
/// way in: the mask, the sparse edits and the penalties), then merged into its k best candidates, so a step copies k
/// values and ids per row to the host instead of the whole vocabulary. Rows that draw over their whole row keep their
/// processed values for the top-p cut and the draw; raw logprob facts come last (sampling.cu). A captured forward ends
/// at its logits: the reduction is launched after the graph, eagerly, once the host has made the step's plan while the
/// device runs the forward, so one graph per batch shape serves every kind of request (vLLM also samples outside
/// its graphs). Also the fused residual-add + RMSNorm for models.
/// </summary>
public sealed unsafe partial class CudaBackend : IDeviceSampler, IFusedNormOps
{
    private const int SampleChunk = 4096;   // sampling.cu's SAMPLE_CHUNK
    private const int ChunksProcessed = 1, ChunksMasked = 2, ChunksDraws = 4;   // sample_chunks' flags (SC_*)
    private PinnedMemory? _samplingDesc;   // the descriptor the kernels read to find the inputs (sampling.cu)
    private PinnedMemory? _samplingData;   // the inputs themselves, reallocated larger when a step needs it
    private DeviceMemory? _samplingCopy;   // sampling_stage's copy of them on the device, as large
    private ulong _samplingDescDevice;     // the descriptor's device address, looked up once

    /// <inheritdoc />
    public int MaxCandidates => 64;

    /// <inheritdoc />
    public void ReduceToHost(Tensor logits, DeviceSamplingInputs s, Span<float> dst)
    {
        _device.MakeCurrent();
        var t = (CudaTensor)logits;
        long outBytes = (long)t.Rows * s.RowWidth * sizeof(float);
        if (dst.Length * 4L < outBytes)
            throw new ArgumentException($"destination holds {dst.Length} floats, {t.Rows * s.RowWidth} needed", nameof(dst));
        using var result = Reduce(t, s);
        CopyOut(result.Ptr, outBytes, dst[..(int)(outBytes / 4)]);
    }

    /// <inheritdoc />
    public Tensor ForwardLogits(int rows, int vocab)
    {
        if (_mode == StepMode.Eager)
            return Empty(rows, vocab);
        long bytes = (long)rows * vocab * _elemSize;
        if (GraphLogits == null || GraphLogits.Bytes < bytes)
            throw new InvalidOperationException($"a captured forward's logits ({bytes} bytes) exceed its graphs' logits buffer");
        return new CudaTensor(DType, [rows, vocab], GraphLogits.Ptr);
    }

    /// <inheritdoc />
    public float[] SampleForward(Tensor logits, DeviceSamplingPlan plan, Func<int, float[]> array)
    {
        _device.MakeCurrent();
        var t = (CudaTensor)logits;
        var mode = _mode;
        long launchedAt = 0;
        try
        {
            if (mode != StepMode.Eager)
                launchedAt = LaunchGraph();   // the graph ends at the logits
            var inputs = plan.Inputs;   // made while the device runs the forward
            var dst = array(t.Rows * (inputs?.RowWidth ?? t.Cols));
            if (inputs == null)
            {
                // Whole rows (a row sampled on the host; rare): copied out synchronously, a replay included.
                CopyToHost(t, dst);
                if (mode == StepMode.Replay)
                    _launchedReplay = (0, launchedAt);
                return dst;
            }
            long bytes = dst.Length * 4L;
            using var result = Reduce(t, inputs);
            if (mode != StepMode.Replay)
            {
                CopyOut(result.Ptr, bytes, dst);
                return dst;
            }
            // A replay returns at once: FinishReplay waits and copies the pinned output into dst.
            Driver.Check(Driver.cuMemcpyDtoHAsync(HostOutput(bytes).Pointer, result.Ptr, (nuint)bytes, S), "cuMemcpyDtoHAsync_v2");
            _launchedReplay = (bytes, launchedAt);
            return dst;
        }
        finally
        {
            _mode = StepMode.Eager;
        }
    }

    /// <inheritdoc />
    public void EndForwardWithoutOutput()
    {
        _device.MakeCurrent();
        var mode = _mode;
        if (mode == StepMode.Eager)
            return;
        long launchedAt = LaunchGraph();
        if (mode == StepMode.Replay)
            _launchedReplay = (0, launchedAt);   // FinishReplay waits for it and copies nothing
    }

    // A captured or replayed forward has reached its end: a capture's graph is instantiated, the graph launched, and
    // what follows is launched eagerly behind it. Returns the launch's timestamp.
    private long LaunchGraph()
    {
        if (_mode == StepMode.Capture)
            EndCapture();
        long launchedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        Driver.Check(Driver.cuGraphLaunch(_current!.Exec!.Exec, S), "cuGraphLaunch");
        _mode = StepMode.Eager;
        return launchedAt;
    }

    // Launches the reduction of t's rows as `s` asks into a fresh [rows, RowWidth] tensor (the caller disposes it).
    private CudaTensor Reduce(CudaTensor t, DeviceSamplingInputs s)
    {
        int k = s.Candidates;
        if (k < 1 || k > MaxCandidates)
            throw new ArgumentOutOfRangeException(nameof(s), k, $"candidates must be in 1..{MaxCandidates}");
        int rows = t.Rows, vocab = t.Cols, width = s.RowWidth;
        if (s.Rows != rows)
            throw new ArgumentException($"sampling inputs have {s.Rows} rows, logits {rows}", nameof(s));
        ulong desc = s.Processed ? StageSamplingInputs(s) : 0;
        var result = new CudaTensor(DType.F32, [rows, width], _pool.Rent((long)rows * width * sizeof(float)), _pool);
        if (rows == 0)
            return result;
        if (!s.Processed)
        {
            TopK(t.Ptr, 0, 0, rows, vocab, k, 0, result.Ptr, width);
            return result;
        }
        _k.Launch(_k.SamplingStage, "sampling_stage", S, 32, 1, 1, 256, desc);
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
        return result;
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

    // Writes the step's inputs (masks filled now) into pinned memory and returns the descriptor's device address.
    // Nothing reads the previous step's inputs any more: BeginStep synchronized, and an eager reduction runs at once.
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
            _samplingDesc = new PinnedMemory(128);
            _samplingDescDevice = DevicePointer(_samplingDesc);
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
        s.Masks?.Invoke(new Span<int>(data + offsets[5], maskInts));
        return _samplingDescDevice;
    }

    private static ulong DevicePointer(PinnedMemory host)
    {
        Driver.Check(Driver.cuMemHostGetDevicePointer(out ulong p, (nint)host.Pointer, 0), "cuMemHostGetDevicePointer_v2");
        return p;
    }
}
