using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LlamaCompare;

/// <summary>Streaming read of 1 GiB with every core: the ceiling for decode, which reads all weights once per token.</summary>
internal static unsafe class Bandwidth
{
    public static double MeasureGBps(int threads)
    {
        const long bytes = 1L << 30;
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            new Span<byte>(p, (int)bytes).Fill(1);
            var sw = Stopwatch.StartNew();
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() => Sum((float*)(p + t * (bytes / threads)), bytes / threads / 4))).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            return bytes / sw.Elapsed.TotalSeconds / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(p);
        }
    }

    private static float Sum(float* f, long n)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (long i = 0; i + 32 <= n; i += 32)
        {
            a0 += Vector256.Load(f + i);
            a1 += Vector256.Load(f + i + 8);
            a2 += Vector256.Load(f + i + 16);
            a3 += Vector256.Load(f + i + 24);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3);
    }
}
