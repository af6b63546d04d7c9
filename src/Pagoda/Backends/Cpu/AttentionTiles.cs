using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Attention for a tile of up to four consecutive query tokens of one sequence and one head: the tokens share
/// their positions up to the first one's, so each key and value row of that range is loaded once for all four
/// (a prompt chunk's attention, and a verification step's token and drafts, were bound by those loads). Every
/// (token, head) keeps <see cref="Attention"/>'s order exactly — each score one accumulator per position over
/// the head's lanes, then its scalar tail; each output element one FMA chain over its positions ascending — so a
/// tile gives the same bits as its tokens one at a time. Under a sliding window the tile spans the first token's
/// window; a later token weighs the positions its own window has left by exactly +0, and a chain that starts at +0
/// stays +0 through fma(v, +0, +0) for every finite v, so its own chain still starts at its first position.
/// </summary>
internal sealed unsafe partial class Attention
{
    private const int TileTokens = 4;
    private readonly float[][] _spare = new float[pool.Size][];

    // A tile runs as one when its positions are consecutive (and a window, if any, spans at least a tile).
    private bool Tileable(int t0, int m)
    {
        var positions = _batch!.Positions;
        return positions[t0 + m - 1] == positions[t0] + m - 1 && (_window <= 0 || _window >= TileTokens);
    }

    private void Tile(int t0, int m, int head, int worker)
    {
        var batch = _batch!;
        int headDim = _headDim, position = batch.Positions[t0];
        // Positions count from the first token's first; token j sees [hidden_j, shared + j), hidden_j = 0 without a window.
        int first = FirstVisible(position);
        int shared = position + 1 - first, n = shared + m - 1, stride = (n + 15) & ~15;
        int kvOffset = head / _groupSize * headDim;
        float* keys = (float*)_keys!.Pointer + kvOffset, values = (float*)_values!.Pointer + kvOffset;
        var (scores, rows) = Scratch(worker, n, TileTokens * stride);
        fixed (float* s = scores, sp = Spare(worker))
        fixed (long* row = rows)
        {
            FillRows(row, batch.BlockTables[_seqOfToken[t0]], first, n, _blockSize, _keys.Cols);
            // Slots past m repeat the last token, its query and weights, into a scratch output (the kernels run four).
            float** q = stackalloc float*[TileTokens];
            float** w = stackalloc float*[TileTokens];
            float** output = stackalloc float*[TileTokens];
            for (int j = 0; j < TileTokens; j++)
            {
                int t = t0 + Math.Min(j, m - 1);
                q[j] = (float*)_q!.Pointer + (long)t * _q.Cols + head * headDim;
                w[j] = s + Math.Min(j, m - 1) * stride;
                output[j] = j < m ? (float*)_dst!.Pointer + (long)t * _dst.Cols + head * headDim : sp;
            }
            int p0 = wide ? Dots4x4x16(q, keys, row, shared, headDim, w) : Dots4x2x8(q, keys, row, shared, headDim, w);
            for (int j = 0; j < m; j++)
            {
                int hidden = FirstVisible(position + j) - first;
                Scores(q[j], keys, row, p0, shared + j, w[j], head, hidden);
            }
            WeightedSum4(values, row, w, shared, headDim, output, m, wide);
            for (int j = 1; j < m; j++)
            {
                for (int p = shared; p < shared + j; p++)
                    Vec.AddScaled(new ReadOnlySpan<float>(values + row[p], headDim), w[j][p], new Span<float>(output[j], headDim));
            }
        }
    }

    private float[] Spare(int worker)
    {
        var spare = _spare[worker];
        if (spare == null || spare.Length < _headDim)
            spare = _spare[worker] = new float[_headDim];
        return spare;
    }

    // w[j][p] = q[j] · k_p for the four queries and p below the returned multiple of 4, in DotKernels.Dot's
    // 16-lane order; four positions' rows are loaded once for the four queries.
    private static int Dots4x4x16(float** q, float* keys, long* row, int n, int headDim, float** w)
    {
        float* q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
        var acc = stackalloc Vector512<float>[16];
        int p = 0;
        for (; p + 4 <= n; p += 4)
        {
            float* k0 = keys + row[p], k1 = keys + row[p + 1], k2 = keys + row[p + 2], k3 = keys + row[p + 3];
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            int i = 0;
            for (; i <= headDim - 16; i += 16)
            {
                var y0 = Vector512.Load(k0 + i);
                var y1 = Vector512.Load(k1 + i);
                var y2 = Vector512.Load(k2 + i);
                var y3 = Vector512.Load(k3 + i);
                var x = Vector512.Load(q0 + i);
                a00 = Vector512.FusedMultiplyAdd(x, y0, a00); a01 = Vector512.FusedMultiplyAdd(x, y1, a01);
                a02 = Vector512.FusedMultiplyAdd(x, y2, a02); a03 = Vector512.FusedMultiplyAdd(x, y3, a03);
                x = Vector512.Load(q1 + i);
                a10 = Vector512.FusedMultiplyAdd(x, y0, a10); a11 = Vector512.FusedMultiplyAdd(x, y1, a11);
                a12 = Vector512.FusedMultiplyAdd(x, y2, a12); a13 = Vector512.FusedMultiplyAdd(x, y3, a13);
                x = Vector512.Load(q2 + i);
                a20 = Vector512.FusedMultiplyAdd(x, y0, a20); a21 = Vector512.FusedMultiplyAdd(x, y1, a21);
                a22 = Vector512.FusedMultiplyAdd(x, y2, a22); a23 = Vector512.FusedMultiplyAdd(x, y3, a23);
                x = Vector512.Load(q3 + i);
                a30 = Vector512.FusedMultiplyAdd(x, y0, a30); a31 = Vector512.FusedMultiplyAdd(x, y1, a31);
                a32 = Vector512.FusedMultiplyAdd(x, y2, a32); a33 = Vector512.FusedMultiplyAdd(x, y3, a33);
            }
            (acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]) = (a00, a01, a02, a03, a10, a11, a12, a13);
            (acc[8], acc[9], acc[10], acc[11], acc[12], acc[13], acc[14], acc[15]) = (a20, a21, a22, a23, a30, a31, a32, a33);
            for (int j = 0; j < 4; j++)
            {
                for (int c = 0; c < 4; c++)
                    w[j][p + c] = Tail(q[j], keys + row[p + c], i, headDim, Vector512.Sum(acc[j * 4 + c]));
            }
        }
        return p;
    }

    // Dots4x4x16 in the 8-lane order (DotKernels.HSum), two positions at a time (AVX2 has 16 registers).
    private static int Dots4x2x8(float** q, float* keys, long* row, int n, int headDim, float** w)
    {
        float* q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
        int p = 0;
        for (; p + 2 <= n; p += 2)
        {
            float* k0 = keys + row[p], k1 = keys + row[p + 1];
            Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            int i = 0;
            for (; i <= headDim - 8; i += 8)
            {
                var y0 = Vector256.Load(k0 + i);
                var y1 = Vector256.Load(k1 + i);
                var x = Vector256.Load(q0 + i);
                a00 = Vector256.FusedMultiplyAdd(x, y0, a00); a01 = Vector256.FusedMultiplyAdd(x, y1, a01);
                x = Vector256.Load(q1 + i);
                a10 = Vector256.FusedMultiplyAdd(x, y0, a10); a11 = Vector256.FusedMultiplyAdd(x, y1, a11);
                x = Vector256.Load(q2 + i);
                a20 = Vector256.FusedMultiplyAdd(x, y0, a20); a21 = Vector256.FusedMultiplyAdd(x, y1, a21);
                x = Vector256.Load(q3 + i);
                a30 = Vector256.FusedMultiplyAdd(x, y0, a30); a31 = Vector256.FusedMultiplyAdd(x, y1, a31);
            }
            w[0][p] = Tail(q0, k0, i, headDim, DotKernels.HSum(a00)); w[0][p + 1] = Tail(q0, k1, i, headDim, DotKernels.HSum(a01));
            w[1][p] = Tail(q1, k0, i, headDim, DotKernels.HSum(a10)); w[1][p + 1] = Tail(q1, k1, i, headDim, DotKernels.HSum(a11));
            w[2][p] = Tail(q2, k0, i, headDim, DotKernels.HSum(a20)); w[2][p + 1] = Tail(q2, k1, i, headDim, DotKernels.HSum(a21));
            w[3][p] = Tail(q3, k0, i, headDim, DotKernels.HSum(a30)); w[3][p + 1] = Tail(q3, k1, i, headDim, DotKernels.HSum(a31));
        }
        return p;
    }

    // A dot product's scalar tail, lanes [from, headDim), after its vector part summed to s.
    private static float Tail(float* q, float* k, int from, int headDim, float s)
    {
        for (int t = from; t < headDim; t++)
            s = MathF.FusedMultiplyAdd(q[t], k[t], s);
        return s;
    }

    // output[j] [headDim] = Σ_{p < n} w[j][p] · v_p for the tile's queries: each value row loaded once for four
    // (64 lanes of four outputs held in registers on AVX-512, 16 on AVX2); lanes past those per query.
    private static void WeightedSum4(float* values, long* row, float** w, int n, int headDim, float** output, int m, bool wide)
    {
        float* w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
        int i = 0;
        for (; wide && i + 64 <= headDim; i += 64)
        {
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            for (int p = 0; p < n; p++)
            {
                float* v = values + row[p] + i;
                var v0 = Vector512.Load(v);
                var v1 = Vector512.Load(v + 16);
                var v2 = Vector512.Load(v + 32);
                var v3 = Vector512.Load(v + 48);
                var x = Vector512.Create(w0[p]);
                a00 = Vector512.FusedMultiplyAdd(v0, x, a00); a01 = Vector512.FusedMultiplyAdd(v1, x, a01);
                a02 = Vector512.FusedMultiplyAdd(v2, x, a02); a03 = Vector512.FusedMultiplyAdd(v3, x, a03);
                x = Vector512.Create(w1[p]);
                a10 = Vector512.FusedMultiplyAdd(v0, x, a10); a11 = Vector512.FusedMultiplyAdd(v1, x, a11);
                a12 = Vector512.FusedMultiplyAdd(v2, x, a12); a13 = Vector512.FusedMultiplyAdd(v3, x, a13);
                x = Vector512.Create(w2[p]);
                a20 = Vector512.FusedMultiplyAdd(v0, x, a20); a21 = Vector512.FusedMultiplyAdd(v1, x, a21);
                a22 = Vector512.FusedMultiplyAdd(v2, x, a22); a23 = Vector512.FusedMultiplyAdd(v3, x, a23);
                x = Vector512.Create(w3[p]);
                a30 = Vector512.FusedMultiplyAdd(v0, x, a30); a31 = Vector512.FusedMultiplyAdd(v1, x, a31);
                a32 = Vector512.FusedMultiplyAdd(v2, x, a32); a33 = Vector512.FusedMultiplyAdd(v3, x, a33);
            }
            Store4(output[0] + i, a00, a01, a02, a03);
            Store4(output[1] + i, a10, a11, a12, a13);
            Store4(output[2] + i, a20, a21, a22, a23);
            Store4(output[3] + i, a30, a31, a32, a33);
        }
        for (; !wide && i + 16 <= headDim; i += 16)
        {
            Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            for (int p = 0; p < n; p++)
            {
                float* v = values + row[p] + i;
                var v0 = Vector256.Load(v);
                var v1 = Vector256.Load(v + 8);
                var x = Vector256.Create(w0[p]);
                a00 = Vector256.FusedMultiplyAdd(v0, x, a00); a01 = Vector256.FusedMultiplyAdd(v1, x, a01);
                x = Vector256.Create(w1[p]);
                a10 = Vector256.FusedMultiplyAdd(v0, x, a10); a11 = Vector256.FusedMultiplyAdd(v1, x, a11);
                x = Vector256.Create(w2[p]);
                a20 = Vector256.FusedMultiplyAdd(v0, x, a20); a21 = Vector256.FusedMultiplyAdd(v1, x, a21);
                x = Vector256.Create(w3[p]);
                a30 = Vector256.FusedMultiplyAdd(v0, x, a30); a31 = Vector256.FusedMultiplyAdd(v1, x, a31);
            }
            a00.Store(output[0] + i); a01.Store(output[0] + i + 8);
            a10.Store(output[1] + i); a11.Store(output[1] + i + 8);
            a20.Store(output[2] + i); a21.Store(output[2] + i + 8);
            a30.Store(output[3] + i); a31.Store(output[3] + i + 8);
        }
        for (int j = 0; i < headDim && j < m; j++)
            WeightedSum(values + i, row, w[j], n, headDim - i, output[j] + i, prefetch: false, wide);
    }

    private static void Store4(float* o, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        a0.Store(o);
        a1.Store(o + 16);
        a2.Store(o + 32);
        a3.Store(o + 48);
    }
}
