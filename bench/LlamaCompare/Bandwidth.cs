using System.Diagnostics;
using System.Runtime.Intrinsics;
using Pagoda.Backends.Cpu;

namespace LlamaCompare;

/// <summary>
/// Streaming read of 1 GiB with every core: the ceiling for decode, which reads all weights once per token.
/// The buffer comes from <see cref="HugePageMemory"/> (2 MiB pages), as Pagoda's int8 and dummy weights do:
/// in 4 KiB pages the same loop measured 21-26 GB/s on a box where the weights streamed at 35-45 GB/s, so
/// it understated the ceiling. The threads start together and each reads its own half.
/// </summary>
internal static unsafe class Bandwidth
{
    public static double MeasureGBps(int threads)
    {
        const long bytes = 1L << 30;
        byte* p = HugePageMemory.Allocate((nuint)bytes);
        try
        {
            new Span<byte>(p, (int)bytes).Fill(1);
            using var start = new Barrier(threads + 1);
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                Sum((float*)(p + t * (bytes / threads)), bytes / threads / 4);
            })).ToList();
            workers.ForEach(w => w.Start());
            start.SignalAndWait();
            var sw = Stopwatch.StartNew();
            workers.ForEach(w => w.Join());
            return bytes / sw.Elapsed.TotalSeconds / 1e9;
        }
        finally
        {
            HugePageMemory.Free(p);
        }
    }

    private static float Sum(float* f, long n)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (long i = 0; i + 64 <= n; i += 64)
        {
            a0 += Vector512.Load(f + i);
            a1 += Vector512.Load(f + i + 16);
            a2 += Vector512.Load(f + i + 32);
            a3 += Vector512.Load(f + i + 48);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3);
    }
}
