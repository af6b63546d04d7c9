using System.Runtime.Intrinsics;
using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// CPU paged attention against the plain per-position loop (one score dot, softmax with the vector exp
/// applied one element at a time, one scaled add of each value row at a time), bit for bit: the kernel's
/// loop arrangement must not move any rounding. Also against double precision, and a sequence's output
/// must not depend on the batch around it. With the 8- and the 16-lane (AVX-512, emulated elsewhere) kernels.
/// </summary>
public unsafe class CpuAttentionTests
{
    [Theory]
    [InlineData(64, 14, 2, 16, 203)]   // the Qwen2.5-0.5B shape, a context that is no multiple of 4
    [InlineData(40, 4, 4, 8, 37)]      // 8-lane groups after the 32-lane ones
    [InlineData(36, 6, 3, 4, 2)]       // a scalar tail; fewer positions than one Dot1x4
    [InlineData(128, 8, 1, 16, 64)]
    [InlineData(96, 3, 1, 16, 70)]     // a 64-lane group, then a 32-lane one
    [InlineData(72, 2, 1, 8, 19)]      // 16-lane dots with a scalar tail of 8
    public void MatchesPerPositionLoopBitForBit(int headDim, int numHeads, int numKvHeads, int blockSize, int context)
    {
        foreach (bool wide in new[] { false, true })
        {
            foreach (var (cap, sinks) in new[] { (0f, false), (2f, false), (0f, true) })
                Check(headDim, numHeads, numKvHeads, blockSize, context, wide, cap, sinks ? Enumerable.Range(0, numHeads).Select(h => 0.7f * h - 1f).ToArray() : null);
        }
    }

    private static void Check(int headDim, int numHeads, int numKvHeads, int blockSize, int context, bool wide, float cap, float[]? sinks)
    {
        var rng = new Random(headDim * 31 + context);
        using var backend = new CpuBackend(new BackendOptions { CpuVector512 = wide });
        int kvWidth = numKvHeads * headDim, blocks = (context + blockSize - 1) / blockSize + 3;
        using var cache = backend.AllocateKvCache(1, blocks, blockSize, kvWidth);
        Fill(((CpuTensor)cache.Keys[0]).F32, rng);
        Fill(((CpuTensor)cache.Values[0]).F32, rng);
        // Blocks out of order, so consecutive positions straddle non-adjacent slots at every block edge.
        int[] table = Enumerable.Range(0, blocks).OrderBy(_ => rng.Next()).ToArray();
        // Two sequences: a one-token decode at the given context and a 3-token chunk of a shorter one.
        int[] table2 = table.Reverse().ToArray();
        var batch = new ForwardBatch([1, 2, 3, 4], [context - 1, 5, 6, 7], [0, 0, 0, 0], [table, table2], [0, 1, 4],
            [context, 8], [0, 3]);
        using var q = CpuTensor.Allocate([4, numHeads * headDim]);
        Fill(q.F32, rng);
        using var dst = CpuTensor.Allocate([4, numHeads * headDim]);
        float scale = 1f / MathF.Sqrt(headDim);
        var spec = new AttentionSpec(numHeads, numKvHeads, headDim, scale) { SoftCap = cap, Sinks = sinks };
        backend.PagedAttention(q, cache, 0, batch, spec, dst);

        var keys = (CpuTensor)cache.Keys[0];
        var values = (CpuTensor)cache.Values[0];
        for (int t = 0; t < 4; t++)
        {
            int[] bt = t == 0 ? table : table2;
            int position = batch.Positions[t];
            for (int h = 0; h < numHeads; h++)
            {
                var expected = Reference(q.Row(t).Slice(h * headDim, headDim), keys, values, bt, blockSize, position,
                    h / (numHeads / numKvHeads) * headDim, headDim, scale, wide, cap, sinks?[h], out double[] exact);
                var actual = dst.Row(t).Slice(h * headDim, headDim).ToArray();
                Assert.Equal(expected, actual);
                for (int i = 0; i < headDim; i++)
                    Assert.True(Math.Abs(exact[i] - actual[i]) < 1e-4, $"token {t} head {h} lane {i}: {exact[i]} vs {actual[i]}");
            }
        }

        // The decode token alone: the same bits as inside the batch.
        var alone = new ForwardBatch([1], [context - 1], [0], [table], [0, 1], [context], [0]);
        using var q1 = CpuTensor.Allocate([1, numHeads * headDim]);
        q.Row(0).CopyTo(q1.Row(0));
        using var dst1 = CpuTensor.Allocate([1, numHeads * headDim]);
        backend.PagedAttention(q1, cache, 0, alone, spec, dst1);
        Assert.Equal(dst.Row(0).ToArray(), dst1.Row(0).ToArray());
    }

    /// <summary>
    /// A prompt chunk's tokens run in tiles of four that share their key and value loads: each token's output must be
    /// the bits it gets alone (a decode token of another sequence too), with sliding windows (which hide a different
    /// number of positions from each token of a tile), a soft cap and sinks.
    /// </summary>
    [Theory]
    [InlineData(64, 4, 2, 16, 9, 0)]
    [InlineData(64, 4, 2, 16, 7, 0)]
    [InlineData(128, 2, 1, 8, 6, 0)]    // a 64-lane group twice
    [InlineData(40, 3, 3, 4, 11, 0)]    // lanes past the 64 (or 16) group per token, and a scalar tail
    [InlineData(36, 2, 1, 16, 5, 0)]
    [InlineData(64, 4, 2, 16, 9, 50)]   // a window: the chunk's first tiles are inside it, its last ones cut
    [InlineData(64, 4, 2, 16, 11, 16)]  // every tile cut, each token by one more position
    [InlineData(40, 3, 3, 4, 9, 4)]     // the smallest window a tile spans, lanes past the vector groups
    [InlineData(72, 2, 1, 8, 7, 3)]     // a window under a tile: its tokens one at a time
    public void ChunkTilesMatchTheirTokensAlone(int headDim, int numHeads, int numKvHeads, int blockSize, int chunk, int window)
    {
        foreach (bool wide in new[] { false, true })
        {
            foreach (var (cap, sinks) in new[] { (0f, false), (30f, false), (0f, true) })
            {
                var spec = new AttentionSpec(numHeads, numKvHeads, headDim, 1f / MathF.Sqrt(headDim))
                {
                    SlidingWindow = window, SoftCap = cap,
                    Sinks = sinks ? Enumerable.Range(0, numHeads).Select(h => 0.5f * h - 0.3f).ToArray() : null,
                };
                CheckChunk(spec, blockSize, chunk, wide);
            }
        }
    }

    private static void CheckChunk(AttentionSpec spec, int blockSize, int chunk, bool wide)
    {
        int headDim = spec.HeadDim, numHeads = spec.NumHeads, start = 45;
        var rng = new Random(headDim * 7 + chunk + spec.SlidingWindow);
        using var backend = new CpuBackend(new BackendOptions { CpuVector512 = wide });
        int context = start + chunk, blocks = (context + blockSize - 1) / blockSize + 2;
        using var cache = backend.AllocateKvCache(1, blocks, blockSize, spec.NumKvHeads * headDim);
        Fill(((CpuTensor)cache.Keys[0]).F32, rng);
        Fill(((CpuTensor)cache.Values[0]).F32, rng);
        int[] table = Enumerable.Range(0, blocks).OrderBy(_ => rng.Next()).ToArray();
        // A decode token of another sequence first, so the chunk's tiles do not start at token 0.
        int[] positions = [.. new[] { 20 }, .. Enumerable.Range(start, chunk)];
        var batch = new ForwardBatch(new int[chunk + 1], positions, new int[chunk + 1], [table.Reverse().ToArray(), table],
            [0, 1, chunk + 1], [21, context], [0]);
        using var q = CpuTensor.Allocate([chunk + 1, numHeads * headDim]);
        Fill(q.F32, rng);
        using var dst = CpuTensor.Allocate([chunk + 1, numHeads * headDim]);
        backend.PagedAttention(q, cache, 0, batch, spec, dst);
        using var q1 = CpuTensor.Allocate([1, numHeads * headDim]);
        using var dst1 = CpuTensor.Allocate([1, numHeads * headDim]);
        for (int t = 0; t <= chunk; t++)
        {
            var alone = new ForwardBatch([0], [positions[t]], [0], [t == 0 ? batch.BlockTables[0] : table], [0, 1], [positions[t] + 1], [0]);
            q.Row(t).CopyTo(q1.Row(0));
            backend.PagedAttention(q1, cache, 0, alone, spec, dst1);
            Assert.True(dst.Row(t).SequenceEqual(dst1.Row(0)), $"token {t} (0: the other sequence's decode token; wide {wide}, cap {spec.SoftCap}, sinks {spec.Sinks != null})");
        }
    }

    // The plain loop, and the same attention in double precision; with a soft cap or a sink, in CappedSoftmax's
    // scalar order (scale, cap, max with the sink, exp, sum, then the sink's term).
    private static float[] Reference(ReadOnlySpan<float> query, CpuTensor keys, CpuTensor values, int[] table, int blockSize,
        int position, int kvOffset, int headDim, float scale, bool wide, float cap, float? sink, out double[] exact)
    {
        var s = new float[position + 1];
        var d = new double[position + 1];
        bool capped = cap != 0 || sink != null;
        float max = sink ?? float.NegativeInfinity;
        double dmax = sink ?? double.NegativeInfinity;
        fixed (float* qp = query)
        {
            for (int p = 0; p <= position; p++)
            {
                var k = keys.Row(table[p / blockSize] * blockSize + p % blockSize).Slice(kvOffset, headDim);
                fixed (float* kp = k)
                    s[p] = DotKernels.Dot<F32Weights>(qp, (byte*)kp, headDim, wide) * scale;
                if (cap != 0)
                    s[p] = MathF.Tanh(s[p] / cap) * cap;
                max = MathF.Max(max, s[p]);
                double dd = 0;
                for (int i = 0; i < headDim; i++)
                    dd += (double)query[i] * k[i];
                d[p] = dd * scale;
                if (cap != 0)
                    d[p] = Math.Tanh(d[p] / cap) * cap;
                dmax = Math.Max(dmax, d[p]);
            }
        }
        float sum = 0;
        double dsum = 0;
        for (int p = 0; p <= position; p++)
        {
            s[p] = capped ? MathF.Exp(s[p] - max) : VecExp.Exp(Vector256.Create(s[p] - max)).GetElement(0);
            sum += s[p];
            d[p] = Math.Exp(d[p] - dmax);
            dsum += d[p];
        }
        if (sink is float k0)
        {
            sum += MathF.Exp(k0 - max);
            dsum += Math.Exp(k0 - dmax);
        }
        var output = new float[headDim];
        exact = new double[headDim];
        float inv = 1f / sum;
        for (int p = 0; p <= position; p++)
        {
            var v = values.Row(table[p / blockSize] * blockSize + p % blockSize).Slice(kvOffset, headDim);
            Vec.AddScaled(v, s[p] * inv, output);
            for (int i = 0; i < headDim; i++)
                exact[i] += d[p] / dsum * v[i];
        }
        return output;
    }

    private static void Fill(Span<float> span, Random rng)
    {
        foreach (ref float v in span)
            v = (float)(rng.NextDouble() * 2 - 1);
    }
}
