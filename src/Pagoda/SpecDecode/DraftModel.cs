using System.Runtime.CompilerServices;
using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Requests;

namespace Pagoda.SpecDecode;

/// <summary>
/// A draft model in the target's engine (vLLM's draft_model method): a smaller model with the target's vocabulary, on
/// the same backend, with a KV pool of its own indexed by the target's block tables. It runs only for requests that
/// draft: each keeps a watermark of the positions whose keys and values the draft holds for its real tokens, and a
/// request's first forward of a step feeds it from there through its newest token (whose logits give the first draft).
/// The drafts it then feeds itself, one forward each, lie in the slots the scheduler's lookahead allocated; those the
/// target accepts move the watermark on, the rest are fed again. A request whose blocks were taken (preemption) starts
/// over, and a new one starts at 0 even when its prompt hit the prefix cache (the draft rewrites shared blocks with the
/// same tokens' values). Drafts are greedy: the verification treats them as a point mass.
/// </summary>
public sealed class DraftModel : IDisposable
{
    private readonly IModel _model;
    private readonly PagedKvCache _cache;
    private readonly WeightStore _weights;
    private readonly bool _deviceGreedy;
    private readonly ConditionalWeakTable<Request, Watermark> _marks = [];

    /// <summary>
    /// A draft over its own pool (as many blocks as the target's) and the weights it was built from; with
    /// <paramref name="deviceGreedy"/> (a backend that samples on the device) only each row's best token crosses to the host.
    /// </summary>
    public DraftModel(IModel model, PagedKvCache cache, WeightStore weights, bool deviceGreedy = false) =>
        (_model, _cache, _weights, _deviceGreedy) = (model, cache, weights, deviceGreedy);

    /// <summary>The draft's architecture facts.</summary>
    public ModelConfig Config => _model.Config;

    /// <summary>
    /// Gives each of <paramref name="wanted"/> (requests that sampled in the step just recorded) its drafts, with the
    /// block tables of that step's <paramref name="batch"/>, whose requests are <paramref name="scheduled"/>.
    /// </summary>
    public void Step(ForwardBatch batch, IReadOnlyList<Request> scheduled, IReadOnlyList<(Request Request, int NumDrafts)> wanted)
    {
        if (wanted.Count == 0)
            return;
        var tableOf = new Dictionary<Request, int[]>(ReferenceEqualityComparer.Instance);
        for (int s = 0; s < scheduled.Count; s++)
            tableOf[scheduled[s]] = batch.BlockTables[s];
        int n = wanted.Count, bs = _cache.BlockSize;
        var drafts = wanted.Select(w => new int[w.NumDrafts]).ToArray();
        var tables = wanted.Select(w => tableOf[w.Request]).ToArray();
        var marks = wanted.Select(w => _marks.GetOrCreateValue(w.Request)).ToArray();
        var (ids, positions, slots) = (new List<int>(), new List<int>(), new List<int>());
        var (queryStart, seqLens, rows) = (new int[n + 1], new int[n], new int[n]);
        for (int w = 0; w < n; w++)
        {
            var req = wanted[w].Request;
            for (int pos = marks[w].Advance(req); pos < req.NumTokens; pos++)
            {
                ids.Add(req.AllTokenIds[pos]);
                positions.Add(pos);
                slots.Add(tables[w][pos / bs] * bs + pos % bs);
            }
            (queryStart[w + 1], seqLens[w], rows[w]) = (ids.Count, req.NumTokens, ids.Count - 1);
        }
        var best = Greedy(new ForwardBatch([.. ids], [.. positions], [.. slots], tables, queryStart, seqLens, rows));
        for (int w = 0; w < n; w++)
            drafts[w][0] = best[w];
        var active = Enumerable.Range(0, n).Where(w => drafts[w].Length > 1).ToList();
        for (int j = 1; active.Count > 0; j++)
        {
            int m = active.Count;
            var (dIds, dPositions, dSlots, dTables) = (new int[m], new int[m], new int[m], new int[m][]);
            var (dQuery, dLens, dRows) = (new int[m + 1], new int[m], new int[m]);
            for (int a = 0; a < m; a++)
            {
                int w = active[a], pos = wanted[w].Request.NumTokens - 1 + j;
                (dIds[a], dPositions[a], dTables[a], dQuery[a + 1], dLens[a], dRows[a]) = (drafts[w][j - 1], pos, tables[w], a + 1, pos + 1, a);
                dSlots[a] = tables[w][pos / bs] * bs + pos % bs;
            }
            best = Greedy(new ForwardBatch(dIds, dPositions, dSlots, dTables, dQuery, dLens, dRows));
            for (int a = 0; a < m; a++)
                drafts[active[a]][j] = best[a];
            active.RemoveAll(w => drafts[w].Length == j + 1);
        }
        for (int w = 0; w < n; w++)
        {
            wanted[w].Request.SpecTokenIds = drafts[w];
            marks[w].Fed(wanted[w].Request, drafts[w]);
        }
    }

    // The draft's positions of one request: [0, valid) hold its real tokens; after them, drafts fed to the draft, which
    // count once the target has accepted them.
    private sealed class Watermark
    {
        private int _valid, _preemptions;
        private int[] _fed = [];

        // The first position to feed: past the fed drafts the target accepted; 0 once the request lost its blocks.
        public int Advance(Request req)
        {
            if (req.NumPreemptions != _preemptions)
                (_valid, _fed, _preemptions) = (0, [], req.NumPreemptions);
            for (int i = 0; i < _fed.Length && _valid < req.NumTokens - 1 && req.AllTokenIds[_valid] == _fed[i]; i++)
                _valid++;
            _fed = [];
            return Math.Min(_valid, req.NumTokens - 1);
        }

        // Every real token is fed now; the drafts but the last were fed after them.
        public void Fed(Request req, int[] drafts) => (_valid, _fed) = (req.NumTokens, drafts[..^1]);
    }

    // The greedy token of each row the batch samples (ties to the lower id, as the device's reduction breaks them).
    private int[] Greedy(ForwardBatch batch)
    {
        int rows = batch.LogitsIndices.Length, vocab = _model.Config.VocabSize;
        var best = new int[rows];
        if (_deviceGreedy)
        {
            var top = _model.Forward(batch with { Sampling = DeviceSamplingPlan.Of(DeviceSamplingInputs.TopK(rows, 1)) }, _cache);   // [rows, 2]: value, id
            for (int r = 0; r < rows; r++)
                best[r] = (int)top[2 * r + 1];
            return best;
        }
        var logits = _model.Forward(batch, _cache);   // [rows, vocab]
        for (int r = 0; r < rows; r++)
            best[r] = ArgMax(logits.AsSpan(r * vocab, vocab));
        return best;
    }

    private static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
        {
            if (row[i] > row[best])
                best = i;
        }
        return best;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _cache.Dispose();
        _model.Dispose();
        _weights.Dispose();
    }
}
