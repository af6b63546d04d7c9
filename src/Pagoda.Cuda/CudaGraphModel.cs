using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Cuda;

/// <summary>
/// Runs decode steps as CUDA graph replays. At start-up one graph is captured per batch size (1, 2, 4, 8,
/// then steps of 8 up to max-num-seqs) from an all-padding batch; a decode batch (one token per sequence,
/// every row sampled) is padded to the next captured size and replayed; anything else runs eagerly. Speculative
/// decoding's steps (every row sampled, each sequence a token and its drafts) get graphs of their own per (size, q),
/// captured the first time that shape comes, q being the most tokens of any sequence: the others' queries are filled
/// up to it where that costs little (<see cref="GraphBatches"/>).
/// Padding rows read and write only the pool's scratch block. Graphs end either in the device's sampling
/// reduction (<see cref="ForwardBatch.Sampling"/>, one graph per kind of inputs: its variable lists are read
/// through a descriptor, so they need no graph of their own) or in a full logits copy: greedy (k = 1) graphs
/// are captured at start-up, other variants the first time a batch of that size asks for them.
/// </summary>
public sealed class CudaGraphModel : IModel
{
    private readonly IModel _inner;
    private readonly CudaBackend _backend;
    private readonly int _scratchSlot, _width;
    private readonly long _outputFloats;   // the pinned output's capacity: a graph's rows must fit it
    private readonly int[] _scratchTable;
    private readonly int[] _sizes = [];
    private readonly Dictionary<(int Size, int Query, (int, bool, bool, bool, bool, bool) Variant), CudaBackend.CudaGraph> _graphs = new();

    /// <summary>The most query tokens per sequence a graph takes: a token and up to 16 drafts to verify.</summary>
    public const int MaxGraphQuery = 17;
    private static readonly (int, bool, bool, bool, bool, bool) FullLogits = (0, false, false, false, false, false);

    /// <summary>Wraps <paramref name="inner"/>; captures graphs now unless <paramref name="enforceEager"/>.</summary>
    public CudaGraphModel(IModel inner, CudaBackend backend, PagedKvCache cache, int maxNumSeqs, int maxModelLen, bool enforceEager)
    {
        _inner = inner;
        _backend = backend;
        _scratchSlot = backend.ScratchBlock * cache.BlockSize;
        _scratchTable = [backend.ScratchBlock];
        _width = (maxModelLen + cache.BlockSize - 1) / cache.BlockSize;
        if (enforceEager)
            return;
        _sizes = CaptureSizes(maxNumSeqs);
        int widest = new DeviceSamplingInputs(1, backend.MaxCandidates) { Processed = true, Logprobs = true }.RowWidth;
        _outputFloats = (long)_sizes[^1] * Math.Max(inner.Config.VocabSize, widest);
        backend.EnsureHostOutput(_outputFloats * sizeof(float));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        foreach (int b in _sizes.Reverse())
            Capture(b, 1, DeviceSamplingInputs.TopK(b, 1), cache);
        CaptureMilliseconds = sw.Elapsed.TotalMilliseconds;
    }

    // `sampling` stands for its kind of inputs: the graph is captured over plain rows of that kind.
    private CudaBackend.CudaGraph Capture(int size, int query, DeviceSamplingInputs? sampling, PagedKvCache cache)
    {
        var dummy = GraphBatches.Pad(Empty, size, query, _scratchSlot, _scratchTable) with { Sampling = sampling?.Empty(size * query) };
        Run(StepMode.Eager, null, dummy, cache);       // warm-up: allocations and cuBLAS heuristics happen outside capture
        var g = new CudaBackend.CudaGraph();
        Run(StepMode.Capture, g, dummy, cache);
        _graphs[(size, query, sampling?.Variant ?? FullLogits)] = g;
        return g;
    }

    /// <summary>Batch sizes with a captured graph.</summary>
    public IReadOnlyCollection<int> CapturedSizes => _sizes;

    /// <summary>Time spent capturing at start-up.</summary>
    public double CaptureMilliseconds { get; }

    /// <summary>Decode steps replayed from graphs so far.</summary>
    public long Replays { get; private set; }

    /// <inheritdoc />
    public ModelConfig Config => _inner.Config;

    /// <inheritdoc />
    public int KvWidth => _inner.KvWidth;

    /// <inheritdoc />
    public long WeightBytes => _inner.WeightBytes;

    /// <summary>1, 2, 4, 8, then multiples of 8 up to max-num-seqs (rounded up to 8).</summary>
    public static int[] CaptureSizes(int maxNumSeqs)
    {
        var sizes = new List<int>();
        foreach (int s in new[] { 1, 2, 4, 8 })
        {
            if (s <= Math.Max(maxNumSeqs, 1) || sizes.Count == 0 || sizes[^1] < maxNumSeqs)
                sizes.Add(s);
        }
        for (int s = 16; sizes[^1] < maxNumSeqs; s += 8)
            sizes.Add(s);
        return [.. sizes.Distinct().Order()];
    }

    /// <inheritdoc />
    public float[] Forward(ForwardBatch batch, PagedKvCache cache) => ForwardAsync(batch, cache).Wait();

    /// <summary>
    /// A decode batch with a captured size is replayed without waiting: the host walk stages its inputs, the
    /// graph is launched and the handle's Wait synchronizes and copies the output out of pinned memory. Other
    /// batches run eagerly, to completion.
    /// </summary>
    public IForwardHandle ForwardAsync(ForwardBatch batch, PagedKvCache cache)
    {
        int n = batch.NumSeqs, q = _sizes.Length > 0 ? GraphBatches.MaxQuery(batch, MaxGraphQuery) : 0;
        bool spread = batch.NumTokens != n * q;
        if (q > 0 && !(spread && (batch.Sampling?.Masks != null || !GraphBatches.WorthSpreading(batch.NumTokens, n, q))))
        {
            var sampling = batch.Sampling;
            int rowWidth = sampling?.RowWidth ?? Config.VocabSize, rows = batch.NumTokens;
            foreach (int size in _sizes)
            {
                if (size < n)
                    continue;
                if ((long)size * q * rowWidth > _outputFloats)
                    break;
                var graph = _graphs.GetValueOrDefault((size, q, sampling?.Variant ?? FullLogits)) ?? Capture(size, q, sampling, cache);
                var (uniform, rowAt) = spread ? GraphBatches.Spread(batch, q, _scratchSlot) : (batch, null);
                float[] output = Run(StepMode.Replay, graph, size == n ? uniform : GraphBatches.Pad(uniform, size, q, _scratchSlot, _scratchTable), cache);
                Replays++;
                return new ReplayHandle(_backend, output, rowWidth, rows, rowAt);
            }
        }
        _backend.BeginStep(StepMode.Eager);
        return new CompletedForward(_inner.Forward(batch, cache));
    }

    /// <summary>
    /// A launched replay: Wait synchronizes with the stream and fills the output from pinned memory; the batch's
    /// <paramref name="rows"/> are the first ones or, for a spread batch, those at <paramref name="rowAt"/>.
    /// </summary>
    private sealed class ReplayHandle(CudaBackend backend, float[] output, int rowWidth, int rows, int[]? rowAt) : IForwardHandle
    {
        public bool IsAsynchronous => true;

        public float[] Wait()
        {
            backend.FinishReplay(output);
            if (rowAt == null)   // rows of padding are dropped
                return output.Length == rows * rowWidth ? output : output.AsSpan(0, rows * rowWidth).ToArray();
            var real = new float[rows * rowWidth];
            for (int r = 0; r < rows; r++)
                output.AsSpan(rowAt[r] * rowWidth, rowWidth).CopyTo(real.AsSpan(r * rowWidth));
            return real;
        }
    }

    private float[] Run(StepMode mode, CudaBackend.CudaGraph? graph, ForwardBatch batch, PagedKvCache cache)
    {
        _backend.BeginStep(mode, graph);
        _backend.FixedBlockTableWidth = mode == StepMode.Eager && graph == null && !IsPadded(batch) ? 0 : _width;
        try
        {
            return _inner.Forward(batch, cache);
        }
        finally
        {
            _backend.FixedBlockTableWidth = 0;
        }
    }

    private static bool IsPadded(ForwardBatch b) => b.NumSeqs > 0 && b.SeqLens[^1] == 1 && b.InputIds[^1] == 0;

    private static readonly ForwardBatch Empty = new([], [], [], [], [0], [], []);

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();
}
