using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Causal attention over the paged KV pool: each query token of a sequence attends to every cached
/// position up to its own, reading keys and values through the sequence's block table. One pool chunk
/// per (tile, head), a tile being up to four consecutive query tokens of one sequence (a prompt chunk, or a
/// token and its drafts), which read each key and value row once for all of them (AttentionTiles.cs); every
/// (token, head) still works alone on its own output slice, so batch composition never changes it.
/// </summary>
/// <remarks>
/// Every element keeps one fixed order: score p = (q · k_p in <see cref="DotKernels.Dot"/>'s order) · scale,
/// softmax over p ascending, output = Σ_p fma(v_p, w_p, ·) with p ascending from zero. The loops are arranged
/// for throughput only — eight positions' dot products interleaved (eight independent FMA chains instead of
/// one latency-bound chain), output lanes held in registers across positions — which moves no rounding.
/// </remarks>
internal sealed unsafe partial class Attention(WorkerPool pool, bool wide) : PoolJob
{
    private readonly RegionClaims _claims = new(pool.Size);
    private readonly float[][] _scores = new float[pool.Size][];
    private readonly long[][] _rows = new long[pool.Size][];
    private CpuTensor? _q, _dst, _keys, _values;
    private ForwardBatch? _batch;
    private int[] _seqOfToken = [], _tileToken = [];
    private int _tiles;
    private int _numHeads, _groupSize, _headDim, _blockSize, _window;
    private float _scale, _softCap;
    private float[]? _sinks;

    public void Paged(CpuTensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, CpuTensor dst)
    {
        int numHeads = spec.NumHeads;
        if (spec.Sinks != null && spec.Sinks.Length != numHeads)
            throw new ArgumentException($"{spec.Sinks.Length} attention sinks for {numHeads} heads");
        (_q, _dst, _batch) = (q, dst, batch);
        _keys = (CpuTensor)cache.Keys[layer];
        _values = (CpuTensor)cache.Values[layer];
        (_numHeads, _groupSize, _headDim, _blockSize, _scale) = (numHeads, numHeads / spec.NumKvHeads, spec.HeadDim, cache.BlockSize, spec.Scale);
        (_window, _softCap, _sinks) = (spec.SlidingWindow, spec.SoftCap, spec.Sinks);
        if (_seqOfToken.Length < batch.NumTokens)
        {
            _seqOfToken = new int[Math.Max(batch.NumTokens, 2 * _seqOfToken.Length)];
            _tileToken = new int[_seqOfToken.Length + 1];
        }
        _tiles = 0;
        for (int s = 0; s < batch.NumSeqs; s++)
        {
            for (int t = batch.QueryStartLoc[s]; t < batch.QueryStartLoc[s + 1]; t++)
            {
                _seqOfToken[t] = s;
                if ((t - batch.QueryStartLoc[s]) % TileTokens == 0)
                    _tileToken[_tiles++] = t;
            }
        }
        _tileToken[_tiles] = batch.NumTokens;
        _claims.Reset(_tiles * numHeads);
        try
        {
            pool.Run(this, _tiles * numHeads);
        }
        finally
        {
            _q = _dst = _keys = _values = null;
            _batch = null;
        }
    }

    public override void Execute(int ticket, int worker)
    {
        // Each worker takes a contiguous run of (tile, head) items (RegionClaims): the heads of one KV group
        // then mostly share a worker, whose cache keeps that group's keys and values after the first.
        int item = _claims.Claim(worker);
        int tile = item / _numHeads, head = item % _numHeads;
        int t0 = _tileToken[tile], m = Math.Min(TileTokens, _tileToken[tile + 1] - t0);
        if (m > 1 && Tileable(t0, m))
        {
            Tile(t0, m, head, worker);
            return;
        }
        for (int t = t0; t < t0 + m; t++)
            One(t, head, worker);
    }

    // One query token against its positions, alone (decode tokens, and tiles whose positions do not run on or whose
    // window is narrower than a tile).
    private void One(int token, int head, int worker)
    {
        var batch = _batch!;
        int headDim = _headDim, blockSize = _blockSize;
        // The rest of the code counts positions from `first`.
        int position = batch.Positions[token], first = FirstVisible(position), n = position + 1 - first;
        int[] blockTable = batch.BlockTables[_seqOfToken[token]];
        int kvOffset = head / _groupSize * headDim;
        int kvCols = _keys!.Cols;
        float* keys = (float*)_keys.Pointer + kvOffset, values = (float*)_values!.Pointer + kvOffset;
        var (scores, rows) = Scratch(worker, n, n);
        fixed (float* s = scores)
        fixed (long* row = rows)
        {
            FillRows(row, blockTable, first, n, blockSize, kvCols);
            float* query = (float*)_q!.Pointer + (long)token * _q.Cols + head * headDim;
            float* output = (float*)_dst!.Pointer + (long)token * _dst.Cols + head * headDim;
            // A decode token's KV rows are cold (the weights streamed since this layer last ran); a prompt chunk's
            // tokens share them, so after the first few they sit in cache and prefetching only costs instructions.
            int seq = _seqOfToken[token];
            bool prefetch = batch.QueryStartLoc[seq + 1] - batch.QueryStartLoc[seq] == 1;
            int p0 = wide ? Dots8x16(query, keys, row, n, headDim, s, prefetch) : Dots8(query, keys, row, n, headDim, s);
            Scores(query, keys, row, p0, n, s, head);
            WeightedSum(values, row, s, n, headDim, output, prefetch, wide);
        }
    }

    // A sliding window sees positions (position - window, position]; without one, every position from 0.
    private int FirstVisible(int position) => _window > 0 ? Math.Max(0, position - _window + 1) : 0;

    // w [p] for p in [from, n) one dot at a time, then w [0, n) = softmax(w · scale) with the head's cap and sink.
    // With start > 0 the softmax covers w [start, n) and w [0, start) is zeroed (positions a window hides).
    private void Scores(float* q, float* keys, long* row, int from, int n, float* w, int head, int start = 0)
    {
        for (int p = from; p < n; p++)
            w[p] = DotKernels.Dot<F32Weights>(q, (byte*)(keys + row[p]), _headDim, wide);
        if (_softCap != 0 || _sinks != null)
            CappedSoftmax(w + start, n - start, _scale, _softCap, _sinks?[head]);
        else
            Softmax(w + start, n - start, _scale);
        new Span<float>(w, start).Clear();
    }

    // The worker's scratch: scoreFloats of scores and n positions' row offsets, grown as needed.
    private (float[] Scores, long[] Rows) Scratch(int worker, int n, int scoreFloats)
    {
        var scores = _scores[worker];
        if (scores == null || scores.Length < scoreFloats)
            scores = _scores[worker] = new float[Math.Max(scoreFloats, 2 * (scores?.Length ?? 256))];
        var rows = _rows[worker];
        if (rows == null || rows.Length < n)
            rows = _rows[worker] = new long[Math.Max(n, 2 * (rows?.Length ?? 256))];
        return (scores, rows);
    }

    // row [p] = element offset of position first + p's key / value row (the same in both pools), p < n.
    private static void FillRows(long* row, int[] blockTable, int first, int n, int blockSize, int kvCols)
    {
        for (int b = first / blockSize, p = 0, pos = first; p < n; b++)
        {
            long offset = ((long)blockTable[b] * blockSize + pos % blockSize) * kvCols;
            for (int e = Math.Min(n, p + blockSize - pos % blockSize); p < e; p++, pos++, offset += kvCols)
                row[p] = offset;
        }
    }

    // s [n] = softmax(s · scale): max and exp eight lanes at a time (every position through the same vector
    // exp, the last partial group padded), the sum over p ascending as before.
    private static void Softmax(float* s, int n, float scale)
    {
        var scale8 = Vector256.Create(scale);
        var max8 = Vector256.Create(float.NegativeInfinity);
        int p = 0;
        for (; p + 8 <= n; p += 8)
        {
            var v = Vector256.Load(s + p) * scale8;
            v.Store(s + p);
            max8 = Vector256.Max(max8, v);
        }
        float max = float.NegativeInfinity;
        for (int i = 0; i < 8; i++)
            max = MathF.Max(max, max8.GetElement(i));
        for (int i = p; i < n; i++)
        {
            s[i] *= scale;
            max = MathF.Max(max, s[i]);
        }
        var m8 = Vector256.Create(max);
        for (p = 0; p + 8 <= n; p += 8)
            VecExp.Exp(Vector256.Load(s + p) - m8).Store(s + p);
        if (p < n)
        {
            float* tail = stackalloc float[8];
            for (int i = 0; i < 8; i++)
                tail[i] = p + i < n ? s[p + i] - max : 0f;
            var e = VecExp.Exp(Vector256.Load(tail));
            for (int i = 0; p + i < n; i++)
                s[p + i] = e.GetElement(i);
        }
        float sum = 0;
        for (p = 0; p < n; p++)
            sum += s[p];
        float inv = 1f / sum;
        for (p = 0; p < n; p++)
            s[p] *= inv;
    }

    // Softmax with Gemma 2's soft cap (each scaled score s → cap · tanh(s / cap)) and gpt-oss's sink (a logit
    // that joins the max and the denominator and gets no value), in transformers' order of operations.
    private static void CappedSoftmax(float* s, int n, float scale, float cap, float? sink)
    {
        float max = sink ?? float.NegativeInfinity;
        for (int p = 0; p < n; p++)
        {
            float v = s[p] * scale;
            if (cap != 0)
                v = MathF.Tanh(v / cap) * cap;
            s[p] = v;
            max = MathF.Max(max, v);
        }
        float sum = 0;
        for (int p = 0; p < n; p++)
            sum += s[p] = MathF.Exp(s[p] - max);
        if (sink is float k)
            sum += MathF.Exp(k - max);
        float inv = 1f / sum;
        for (int p = 0; p < n; p++)
            s[p] *= inv;
    }

    // s[p] = q · k_p for p below the returned multiple of 8, eight positions at a time, each in exactly
    // DotKernels.Dot's 8-lane order (one accumulator over k, the lanes summed by HSum, then the scalar tail).
    private static int Dots8(float* q, float* keys, long* row, int n, int headDim, float* s)
    {
        int p = 0;
        for (; p + 8 <= n; p += 8)
        {
            float* k0 = keys + row[p], k1 = keys + row[p + 1], k2 = keys + row[p + 2], k3 = keys + row[p + 3];
            float* k4 = keys + row[p + 4], k5 = keys + row[p + 5], k6 = keys + row[p + 6], k7 = keys + row[p + 7];
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            int i = 0;
            for (; i <= headDim - 8; i += 8)
            {
                var x = Vector256.Load(q + i);
                a0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k0 + i), a0);
                a1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k1 + i), a1);
                a2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k2 + i), a2);
                a3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k3 + i), a3);
                a4 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k4 + i), a4);
                a5 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k5 + i), a5);
                a6 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k6 + i), a6);
                a7 = Vector256.FusedMultiplyAdd(x, Vector256.Load(k7 + i), a7);
            }
            s[p] = DotKernels.HSum(a0);
            s[p + 1] = DotKernels.HSum(a1);
            s[p + 2] = DotKernels.HSum(a2);
            s[p + 3] = DotKernels.HSum(a3);
            s[p + 4] = DotKernels.HSum(a4);
            s[p + 5] = DotKernels.HSum(a5);
            s[p + 6] = DotKernels.HSum(a6);
            s[p + 7] = DotKernels.HSum(a7);
            for (int j = 0; j < 8; j++)
            {
                float* k = keys + row[p + j];
                for (int t = i; t < headDim; t++)
                    s[p + j] = MathF.FusedMultiplyAdd(q[t], k[t], s[p + j]);
            }
        }
        return p;
    }

    // Dots8 in DotKernels.Dot's 16-lane order (the AVX-512 one): one accumulator per position over k = 0, 16,
    // ..., summed by Vector512.Sum, then the scalar tail.
    private static int Dots8x16(float* q, float* keys, long* row, int n, int headDim, float* s, bool prefetch)
    {
        int p = 0;
        for (; p + 8 <= n; p += 8)
        {
            float* k0 = keys + row[p], k1 = keys + row[p + 1], k2 = keys + row[p + 2], k3 = keys + row[p + 3];
            float* k4 = keys + row[p + 4], k5 = keys + row[p + 5], k6 = keys + row[p + 6], k7 = keys + row[p + 7];
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            if (prefetch)
                PrefetchRows(keys, row, p + 8, Math.Min(n, p + 16), headDim);
            int i = 0;
            for (; i <= headDim - 16; i += 16)
            {
                var x = Vector512.Load(q + i);
                a0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k0 + i), a0);
                a1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k1 + i), a1);
                a2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k2 + i), a2);
                a3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k3 + i), a3);
                a4 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k4 + i), a4);
                a5 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k5 + i), a5);
                a6 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k6 + i), a6);
                a7 = Vector512.FusedMultiplyAdd(x, Vector512.Load(k7 + i), a7);
            }
            s[p] = Vector512.Sum(a0);
            s[p + 1] = Vector512.Sum(a1);
            s[p + 2] = Vector512.Sum(a2);
            s[p + 3] = Vector512.Sum(a3);
            s[p + 4] = Vector512.Sum(a4);
            s[p + 5] = Vector512.Sum(a5);
            s[p + 6] = Vector512.Sum(a6);
            s[p + 7] = Vector512.Sum(a7);
            for (int j = 0; j < 8; j++)
            {
                float* k = keys + row[p + j];
                for (int t = i; t < headDim; t++)
                    s[p + j] = MathF.FusedMultiplyAdd(q[t], k[t], s[p + j]);
            }
        }
        return p;
    }

    // Requests the first `floats` floats of rows [from, to) ahead of their use: the rows of a layer's KV are
    // scattered over blocks and cold (the weights streamed between this layer and the last evict them).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchRows(float* pool, long* row, int from, int to, int floats)
    {
        for (int p = from; p < to; p++)
        {
            for (int f = 0; f < floats; f += 16)
                Sse.Prefetch0(pool + row[p] + f);
        }
    }

    // output [headDim] = Σ_p w[p] · v_p, each element fused-multiply-added over p ascending from zero. Four
    // 16- or 8-lane groups of the output stay in registers while all positions stream past (the lane width
    // changes no element's order, so both give the same bits).
    private static void WeightedSum(float* values, long* row, float* w, int n, int headDim, float* output, bool prefetch, bool wide)
    {
        int i = 0;
        for (; wide && i + 64 <= headDim; i += 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int p = 0; p < n; p++)
            {
                float* v = values + row[p] + i;
                if (prefetch && (p & 7) == 0)
                    PrefetchRows(values + i, row, p + 8, Math.Min(n, p + 16), 64);
                var wp = Vector512.Create(w[p]);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(v), wp, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 16), wp, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 32), wp, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(v + 48), wp, a3);
            }
            a0.Store(output + i);
            a1.Store(output + i + 16);
            a2.Store(output + i + 32);
            a3.Store(output + i + 48);
        }
        for (; i + 32 <= headDim; i += 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int p = 0; p < n; p++)
            {
                float* v = values + row[p] + i;
                var wp = Vector256.Create(w[p]);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(v), wp, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(v + 8), wp, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(v + 16), wp, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(v + 24), wp, a3);
            }
            a0.Store(output + i);
            a1.Store(output + i + 8);
            a2.Store(output + i + 16);
            a3.Store(output + i + 24);
        }
        for (; i + 8 <= headDim; i += 8)
        {
            Vector256<float> a = default;
            for (int p = 0; p < n; p++)
                a = Vector256.FusedMultiplyAdd(Vector256.Load(values + row[p] + i), Vector256.Create(w[p]), a);
            a.Store(output + i);
        }
        for (; i < headDim; i++)
        {
            float a = 0;
            for (int p = 0; p < n; p++)
                a = MathF.FusedMultiplyAdd(values[row[p] + i], w[p], a);
            output[i] = a;
        }
    }
}
