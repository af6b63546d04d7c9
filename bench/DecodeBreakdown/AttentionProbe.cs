using System.Diagnostics;
using Pagoda.Backends;

namespace DecodeBreakdown;

/// <summary>
/// One layer's decode attention alone: its KV rows warm in cache (the same call repeated) or cold (64 MiB
/// streamed between calls, as the weights do between one token's layer and the next's).
/// </summary>
internal static unsafe class AttentionProbe
{
    public static void Run(IBackend backend, int numHeads, int numKvHeads, int headDim, int context, int calls)
    {
        const int blockSize = 16;
        int blocks = (context + blockSize - 1) / blockSize;
        using var cache = backend.AllocateKvCache(1, blocks, blockSize, numKvHeads * headDim);
        // The pool is not zeroed: store zero rows into every slot (garbage could hold denormals or NaNs).
        using (var zeros = backend.Empty(blocks * blockSize, numKvHeads * headDim))
            backend.StoreKv(zeros, zeros, cache, 0, Enumerable.Range(0, blocks * blockSize).ToArray());
        using var q = backend.Empty(1, numHeads * headDim);
        using var dst = backend.Empty(1, numHeads * headDim);
        var batch = new ForwardBatch([0], [context - 1], [context - 1], [Enumerable.Range(0, blocks).ToArray()], [0, 1], [context], [0]);
        float scale = 1f / MathF.Sqrt(headDim);
        var flush = new byte[64 << 20];
        // Past tiered JIT: enough calls for tier 1, and time for the background compile to land.
        for (int w = 0; w < 3; w++)
        {
            for (int c = 0; c < 200; c++)
                backend.PagedAttention(q, cache, 0, batch, new AttentionSpec(numHeads, numKvHeads, headDim, scale), dst);
            Thread.Sleep(200);
        }
        foreach (bool cold in new[] { false, true })
        {
            var times = new List<double>();
            for (int c = 0; c < calls; c++)
            {
                if (cold)
                    Touch(flush);
                long t = Stopwatch.GetTimestamp();
                backend.PagedAttention(q, cache, 0, batch, new AttentionSpec(numHeads, numKvHeads, headDim, scale), dst);
                times.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
            }
            times.Sort();
            Console.WriteLine($"attention, context {context}, {(cold ? "cold" : "warm")}: median {times[times.Count / 2]:F1} µs, min {times[0]:F1} µs");
        }
    }

    private static long Touch(byte[] a)
    {
        long s = 0;
        for (int i = 0; i < a.Length; i += 64)
            s += a[i];
        return s;
    }
}
