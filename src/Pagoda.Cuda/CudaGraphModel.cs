using Pagoda.Backends;
using Pagoda.Cuda.Interop;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Cuda;

/// <summary>
/// Runs decode steps as CUDA graph replays. At start-up one graph is captured per batch size (1, 2, 4, 8,
/// then steps of 8 up to max-num-seqs) from an all-padding batch; a decode batch (one token per sequence,
/// every row sampled) is padded to the next captured size and replayed; anything else runs eagerly. Speculative
/// decoding's steps (every row sampled, each sequence a token and its drafts) replay graphs of (size, q): with
/// num_speculative_tokens k, those of q = 1 + k are captured at start-up too (vLLM's uniform decode query length) and
/// every sequence's query is filled up to it where that costs little (<see cref="GraphBatches"/>); other shapes fill up
/// to their longest query and are captured the first time they come.
/// Padding rows read and write only the pool's scratch block. Graphs end at the logits, in a buffer of their own:
/// the device's sampling reduction (<see cref="ForwardBatch.Sampling"/>) or the copy of whole rows is launched behind
/// the replay, so one graph per shape serves every kind of request, and the host makes the step's sampling plan
/// while the graph runs.
/// </summary>
public sealed class CudaGraphModel : IModel
{
    private readonly IModel _inner;
    private readonly CudaBackend _backend;
    private readonly int _scratchSlot, _width;
    private readonly int _graphRows;   // the graphs' logits buffer holds this many rows: a graph's size · query must fit
    private readonly int _verifyQuery;   // 1 + num_speculative_tokens when speculating (its graphs captured at start-up), else 0
    private readonly DeviceMemory? _logits;   // [_graphRows, vocab]: where this model's graphs leave their logits
    private readonly int[] _scratchTable;
    private readonly int[] _sizes = [];
    private readonly Dictionary<(int Size, int Query), CudaBackend.CudaGraph> _graphs = new();

    /// <summary>The most query tokens per sequence a graph takes: a token and up to 16 drafts to verify.</summary>
    public const int MaxGraphQuery = 17;

    /// <summary>Logits rows the graphs' buffer holds at least (verification graphs at small batch sizes fit in it).</summary>
    public const int MinGraphRows = 256;

    /// <summary>
    /// Wraps <paramref name="inner"/>; captures graphs now unless <paramref name="enforceEager"/>, for decode and, when
    /// <paramref name="verifyQuery"/> is above 1 (1 + the drafts a step verifies), for verification steps of that many tokens.
    /// </summary>
    public CudaGraphModel(IModel inner, CudaBackend backend, PagedKvCache cache, int maxNumSeqs, int maxModelLen, bool enforceEager, int verifyQuery = 0)
    {
        _inner = inner;
        _backend = backend;
        _scratchSlot = backend.ScratchBlock * cache.BlockSize;
        _scratchTable = [backend.ScratchBlock];
        _width = (maxModelLen + cache.BlockSize - 1) / cache.BlockSize;
        if (enforceEager)
            return;
        _sizes = CaptureSizes(maxNumSeqs);
        _graphRows = Math.Max(_sizes[^1], MinGraphRows);
        _logits = backend.AllocateRows(_graphRows, inner.Config.VocabSize);
        _verifyQuery = Math.Clamp(verifyQuery, 0, MaxGraphQuery);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        foreach (int b in _sizes.Reverse())
        {
            Capture(b, 1, cache);
            if (_verifyQuery > 1 && b * _verifyQuery <= _graphRows)
                Capture(b, _verifyQuery, cache);
        }
        CaptureMilliseconds = sw.Elapsed.TotalMilliseconds;
    }

    // The graph of `size` sequences of `query` tokens each, captured from padding (greedy rows: whatever follows the
    // logits is launched after the graph, not captured).
    private CudaBackend.CudaGraph Capture(int size, int query, PagedKvCache cache)
    {
        var dummy = GraphBatches.Pad(Empty, size, query, _scratchSlot, _scratchTable) with
        {
            Sampling = DeviceSamplingPlan.Of(DeviceSamplingInputs.TopK(size * query, 1)),
        };
        Run(StepMode.Eager, null, dummy, cache);       // warm-up: allocations and cuBLAS heuristics happen outside capture
        var g = new CudaBackend.CudaGraph();
        Run(StepMode.Capture, g, dummy, cache);
        _graphs[(size, query)] = g;
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
    /// graph is launched, the sampling plan is made and its reduction launched behind the graph, and the handle's
    /// Wait synchronizes and copies the output out of pinned memory. Other batches run eagerly, to completion.
    /// </summary>
    public IForwardHandle ForwardAsync(ForwardBatch batch, PagedKvCache cache)
    {
        int n = batch.NumSeqs, q = _sizes.Length > 0 ? GraphBatches.GraphQuery(batch, MaxGraphQuery, _verifyQuery) : 0;
        bool spread = batch.NumTokens != n * q;
        if (q > 0)
        {
            // A graph ends at its logits: without a plan, the whole rows are copied out behind it.
            batch = batch.Sampling != null ? batch : batch with { Sampling = DeviceSamplingPlan.Of(null) };
            foreach (int size in _sizes)
            {
                if (size < n)
                    continue;
                if (size * q > _graphRows)
                    break;
                var graph = _graphs.GetValueOrDefault((size, q)) ?? Capture(size, q, cache);
                var (uniform, rowAt) = spread ? GraphBatches.Spread(batch, q, _scratchSlot) : (batch, null);
                float[] output = Run(StepMode.Replay, graph, size == n ? uniform : GraphBatches.Pad(uniform, size, q, _scratchSlot, _scratchTable), cache);
                Replays++;
                return new ReplayHandle(_backend, output, output.Length / (size * q), batch.NumTokens, rowAt);
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
        _backend.GraphLogits = _logits;
        try
        {
            return _inner.Forward(batch, cache);
        }
        finally
        {
            _backend.FixedBlockTableWidth = 0;
            _backend.GraphLogits = null;
        }
    }

    private static bool IsPadded(ForwardBatch b) => b.NumSeqs > 0 && b.SeqLens[^1] == 1 && b.InputIds[^1] == 0;

    private static readonly ForwardBatch Empty = new([], [], [], [], [0], [], []);

    /// <inheritdoc />
    public void Dispose()
    {
        _inner.Dispose();
        _logits?.Dispose();
    }
}
