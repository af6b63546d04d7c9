using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>How the ops of one forward are executed.</summary>
public enum StepMode
{
    /// <summary>Launch every op now.</summary>
    Eager,
    /// <summary>Record every op into a CUDA graph (instantiated when the forward reaches its logits).</summary>
    Capture,
    /// <summary>Launch nothing: only refresh the pinned inputs a captured graph reads, then replay it.</summary>
    Replay,
}

/// <summary>
/// Staging of host inputs and step modes. A captured graph reads its inputs from fixed pinned
/// addresses: every forward starts the staging buffer at offset 0 and stages the same inputs in the
/// same order, so a replay re-runs the model's host code with kernels switched off, which writes the new
/// ids, positions, slots and block tables exactly where the graph's copies read them.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    private const long StagingBytes = 32L << 20;
    private readonly PinnedMemory _staging;
    private long _stagingOffset;
    private readonly Dictionary<string, (int[] Data, CudaTensor Buffer)> _uploads = new();
    private readonly List<CudaGraph> _graphs = [];
    private StepMode _mode = StepMode.Eager;
    private CudaGraph? _current;
    private PinnedMemory? _hostOut;
    private (long Bytes, long LaunchedAt)? _launchedReplay;
    private ForwardBatch? _metaBatch;
    private AttentionMeta _meta;

    /// <summary>A captured forward.</summary>
    public sealed class CudaGraph : IDisposable
    {
        internal GraphExecHandle? Exec { get; set; }

        /// <inheritdoc />
        public void Dispose() => Exec?.Dispose();
    }

    private bool Skip => _mode == StepMode.Replay;

    /// <summary>
    /// Block-table width to use for every batch while capturing or replaying (graphs need fixed shapes);
    /// 0 lets each eager batch use its own widest table.
    /// </summary>
    public int FixedBlockTableWidth { get; set; }

    /// <summary>Starts a forward in <paramref name="mode"/>; <paramref name="graph"/> is the graph to capture into or replay.</summary>
    public void BeginStep(StepMode mode, CudaGraph? graph = null)
    {
        _device.MakeCurrent();
        if (mode != StepMode.Eager && graph == null)
            throw new ArgumentNullException(nameof(graph));
        Sync(); // the previous step's staged inputs have been consumed (a replay nobody waited for: its output is dropped)
        _launchedReplay = null;
        _stagingOffset = 0;
        foreach (var (_, u) in _uploads)
            u.Buffer.Dispose();
        _uploads.Clear();
        _metaBatch = null;
        _mode = mode;
        _current = graph;
        if (mode == StepMode.Capture)
            Driver.Check(Driver.cuStreamBeginCapture(S, 2 /* relaxed */), "cuStreamBeginCapture_v2");
    }

    /// <summary>
    /// Where the forward run in a graph mode (capture or replay) leaves its logits (<see cref="ForwardLogits"/>): each
    /// <see cref="CudaGraphModel"/> owns one buffer that its graphs write, set for each of its forwards.
    /// </summary>
    internal DeviceMemory? GraphLogits { get; set; }

    /// <summary>Device memory of <paramref name="rows"/> rows of <paramref name="cols"/> elements of <see cref="DType"/>.</summary>
    internal DeviceMemory AllocateRows(int rows, int cols)
    {
        _device.MakeCurrent();
        return new DeviceMemory((long)rows * cols * _elemSize);
    }

    // Pinned memory a replay's reduction is copied to, grown when a step needs more (no graph reads it).
    private PinnedMemory HostOutput(long bytes)
    {
        if (_hostOut == null || _hostOut.Bytes < bytes)
        {
            _hostOut?.Dispose();
            _hostOut = new PinnedMemory(Math.Max(bytes, 1L << 20));
        }
        return _hostOut;
    }

    /// <summary>
    /// Stopwatch ticks from each graph launch to the end of its replay (device time as the host sees it; where
    /// the host works before <see cref="FinishReplay"/>, the longer of that work and the device's).
    /// </summary>
    public long GraphTicks { get; set; }

    /// <summary>Graphs captured so far.</summary>
    public int GraphCount => _graphs.Count;

    /// <inheritdoc />
    public void CopyToHost(Tensor src, Span<float> dst)
    {
        _device.MakeCurrent();
        var t = (CudaTensor)src;
        long bytes = t.NumElements * 4;
        CudaTensor? f32 = null;
        ulong from = t.Ptr;
        if (!Skip && t.DType != DType.F32)
        {
            f32 = new CudaTensor(DType.F32, t.Shape, _pool.Rent(bytes), _pool);
            _k.Launch(_k.ToF32, "to_f32", S, Grid(t.NumElements), 1, 1, 256, t.Ptr, f32.Ptr, t.NumElements);
            from = f32.Ptr;
        }
        try
        {
            CopyOut(from, bytes, dst);
        }
        finally
        {
            f32?.Dispose();
        }
    }

    // An eager copy to the host, waited for. A captured forward ends at its logits (SampleForward), never here.
    private void CopyOut(ulong from, long bytes, Span<float> dst)
    {
        if (_mode != StepMode.Eager)
            throw new InvalidOperationException("a captured forward must end in SampleForward, not in a copy to the host");
        fixed (float* d = dst)
            Driver.Check(Driver.cuMemcpyDtoHAsync(d, from, (nuint)bytes, S), "cuMemcpyDtoHAsync_v2");
        Sync();
    }

    // Ends the capture begun by BeginStep: the graph is instantiated and kept.
    private void EndCapture()
    {
        Driver.Check(Driver.cuStreamEndCapture(S, out nint graph), "cuStreamEndCapture");
        _current!.Exec = new GraphExecHandle(graph);
        _graphs.Add(_current);
    }

    /// <summary>
    /// Waits for the replay the last forward launched and copies its output (the reduction that forward's
    /// <see cref="SampleForward"/> launched behind the graph) into <paramref name="dst"/>, the array that forward
    /// returned. Nothing else may be staged, launched or copied between the launch and this call.
    /// </summary>
    public void FinishReplay(Span<float> dst)
    {
        if (_launchedReplay is not var (bytes, launchedAt))
            throw new InvalidOperationException("no replay was launched since the last step began");
        _launchedReplay = null;
        _device.MakeCurrent();
        Sync();
        GraphTicks += System.Diagnostics.Stopwatch.GetTimestamp() - launchedAt;
        if (bytes > 0)   // a replay whose output was copied synchronously, or that has none (a tensor-parallel worker's), left nothing pinned
            new Span<float>(_hostOut!.Pointer, checked((int)(bytes / 4))).CopyTo(dst);
    }

    private ulong UploadInts(string key, ReadOnlySpan<int> data)
    {
        if (_uploads.TryGetValue(key, out var last) && data.SequenceEqual(last.Data))
            return last.Buffer.Ptr;
        data.CopyTo(ReserveStaging(data.Length, out long offset));
        return SendStaged(key, offset, data.Length, data.ToArray());
    }

    // Pinned staging for `length` ints, filled in place by the caller and then sent by SendStaged (large inputs
    // skip a managed copy this way). Captures and replays reserve in the same order, so at the same offsets.
    private Span<int> ReserveStaging(int length, out long offset)
    {
        long aligned = (Math.Max(length, 1) * 4L + 255) & ~255L;
        if (_stagingOffset + aligned > StagingBytes)
        {
            if (_mode != StepMode.Eager)
                throw new InvalidOperationException("a captured step stages more than the pinned staging buffer holds");
            Sync();
            _stagingOffset = 0;
        }
        offset = _stagingOffset;
        _stagingOffset += aligned;
        return new Span<int>(_staging.Pointer + offset, length);
    }

    // Copies staged ints to a device buffer of their own (none when replaying: the graph's copy reads the
    // staging). `data` is what a later upload under the same key compares with to reuse the buffer.
    private ulong SendStaged(string key, long offset, int length, int[] data)
    {
        if (_uploads.TryGetValue(key, out var last))
            last.Buffer.Dispose();
        long bytes = Math.Max(length, 1) * 4L;
        var buffer = new CudaTensor(DType.F32, [Math.Max(length, 1)], _pool.Rent(bytes), _pool);
        _uploads[key] = (data, buffer);
        if (!Skip)
            Driver.Check(Driver.cuMemcpyHtoDAsync(buffer.Ptr, _staging.Pointer + offset, (nuint)(length * 4L), S), "cuMemcpyHtoDAsync_v2");
        return buffer.Ptr;
    }

    private ulong UploadFloats(string key, ReadOnlySpan<float> data) =>
        UploadInts(key, System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(data));

    private const int AttentionKeys = 64;
    private const int AttentionCounterSlots = 1 << 16;

    /// <summary>What the attention kernel reads besides q and the pool, staged once per batch.</summary>
    private readonly record struct AttentionMeta(ulong BlockTables, int Width, ulong Positions, ulong Tiles, int NumTiles,
        int MaxSplits, int Workers);

    /// <summary>Decode batches from which attention splits are at least <see cref="LargeBatchSplitKeys"/> long.</summary>
    public const int LargeBatchSplitSeqs = 8;

    /// <summary>The shortest split of a large decode batch outside batch-invariant mode.</summary>
    public const int LargeBatchSplitKeys = 256;

    /// <summary>
    /// Keys per attention split of a tile whose last row sees <paramref name="keys"/> keys. In batch-invariant mode
    /// it is 64 per 4,096 tokens of the longest context the engine takes, so that a row's reduction order depends
    /// only on its own position (alone, in any batch, inside a prefill chunk). Otherwise it follows the tile's own
    /// context (64 per 4,096 of its keys): a short context under a long max-model-len keeps its parallelism (one
    /// split of 512 keys at 32K gave a single block per kv head at batch 1). A decode batch of
    /// <see cref="LargeBatchSplitSeqs"/> or more sequences (<paramref name="decodeSeqs"/>; 0 for other batches)
    /// takes splits of at least <see cref="LargeBatchSplitKeys"/>: each split writes a partial result that is read
    /// back and merged, and from 8 sequences on, fewer and longer splits are faster (H100: -8% per step at 8
    /// sequences, -10 to -16% at 16-256; one sequence is 6% slower with them, docs/BENCHMARKS.md). Either way a
    /// tile has at most <see cref="MaxAttentionSplits"/> splits.
    /// </summary>
    public static int SplitLength(int maxModelLen, int keys, int decodeSeqs, bool batchInvariant)
    {
        if (batchInvariant)
            return AttentionKeys * Math.Max(1, (maxModelLen + 4095) / 4096);
        int own = AttentionKeys * Math.Max(1, (keys + 4095) / 4096);
        return decodeSeqs >= LargeBatchSplitSeqs ? Math.Max(own, LargeBatchSplitKeys) : own;
    }

    /// <summary>The most splits a tile takes outside batch-invariant mode: 4,096 / 64.</summary>
    public const int MaxAttentionSplits = 4096 / AttentionKeys;

    private AttentionMeta AttentionMetadata(ForwardBatch batch, int blockSize, int group, int numKvHeads)
    {
        if (ReferenceEquals(batch, _metaBatch))
            return _meta;
        int maxLen = batch.SeqLens.Length == 0 ? 1 : batch.SeqLens.Max();
        int width = FixedBlockTableWidth > 0 ? FixedBlockTableWidth : Math.Max(1, (maxLen + blockSize - 1) / blockSize);
        // [numSeqs, width], written straight into the staging (graphs: 256 KB per step at 256 sequences). Entries
        // past a sequence's blocks keep whatever was there: the kernel reads only the blocks its keys fill.
        var tables = ReserveStaging(batch.NumSeqs * width, out long tablesAt);
        bool decodeOnly = true;
        for (int s = 0; s < batch.NumSeqs; s++)
        {
            var bt = batch.BlockTables[s];
            int count = Math.Min(bt.Length, width);
            bt.AsSpan(0, count).CopyTo(tables.Slice(s * width));
            decodeOnly &= batch.QueryStartLoc[s + 1] - batch.QueryStartLoc[s] == 1;
        }
        // Query tiles: up to 64 rows (tokens x the group's q heads) of one sequence; one token when decoding. Each
        // is (sequence, first token, tokens, split length; see SplitLength).
        int perTile = decodeOnly ? 1 : Math.Max(1, 64 / group);
        int decodeSeqs = decodeOnly ? batch.NumSeqs : 0;
        var tiles = new List<int>();
        for (int s = 0; s < batch.NumSeqs; s++)
        {
            for (int t = batch.QueryStartLoc[s]; t < batch.QueryStartLoc[s + 1]; t += perTile)
            {
                int count = Math.Min(perTile, batch.QueryStartLoc[s + 1] - t);
                tiles.AddRange([s, t, count, SplitLength(MaxModelLen, batch.Positions[t + count - 1] + 1, decodeSeqs, BatchInvariant)]);
            }
        }
        int numTiles = tiles.Count / 4;
        // Room for the most splits any tile of this shape may take; decode spreads a tile's splits over several blocks.
        int span = FixedBlockTableWidth > 0 ? FixedBlockTableWidth * blockSize : maxLen;
        int shortest = SplitLength(MaxModelLen, 1, decodeSeqs, BatchInvariant);
        int maxSplits = Math.Max(1, (span + shortest - 1) / shortest);
        if (!BatchInvariant)
            maxSplits = Math.Min(maxSplits, MaxAttentionSplits);
        int workers = 1;
        if (decodeOnly && maxSplits > 1 && numTiles * numKvHeads <= AttentionCounterSlots)
            workers = Math.Clamp((8 * _device.MultiprocessorCount + numTiles * numKvHeads - 1) / (numTiles * numKvHeads), 1, maxSplits);
        _meta = new AttentionMeta(SendStaged("block_tables", tablesAt, batch.NumSeqs * width, []), width, UploadInts("positions", batch.Positions),
            UploadInts("attention_tiles", tiles.ToArray()), numTiles, maxSplits, workers);
        _metaBatch = batch;
        return _meta;
    }
}
