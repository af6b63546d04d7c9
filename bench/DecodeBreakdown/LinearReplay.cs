using System.Diagnostics;
using Pagoda.Backends.Cpu;

namespace DecodeBreakdown;

/// <summary>
/// Only the Linear ops of one batch-1 decode token (Qwen2.5-0.5B shapes: per layer qkv, o, gate/up,
/// down; then the LM head), int8, back to back with nothing between them, the weights in row quads and
/// row-major interleaved pass by pass: what the GEMV streams when no other op runs.
/// </summary>
internal static class LinearReplay
{
    public static void Run(CpuBackend backend, int passes)
    {
        var shapes = new List<(int Rows, int K)>();
        for (int l = 0; l < 24; l++)
            shapes.AddRange([(1152, 896), (896, 896), (9728, 896), (896, 4864)]);
        shapes.Add((151936, 896));
        string[] names = ["row quads", "row-major"];
        var arms = new[] { true, false }.Select(quads =>
        {
            backend.Int8RowQuads = quads;
            return shapes.Select(s => Make(backend, s.Rows, s.K)).ToArray();
        }).ToArray();
        backend.Int8RowQuads = true;
        long bytes = shapes.Sum(s => (long)s.Rows * s.K);
        using var x896 = CpuTensor.Allocate([1, 896]);
        using var x4864 = CpuTensor.Allocate([1, 4864]);
        using var dst = CpuTensor.Allocate([1, 151936]);
        var ms = names.Select(_ => new List<double>()).ToArray();
        for (int p = 0; p < passes; p++)
        {
            for (int a = 0; a < arms.Length; a++)
            {
                long start = Stopwatch.GetTimestamp();
                foreach (var w in arms[a])
                    backend.Linear(w.Cols == 896 ? x896 : x4864, w, null, Out(dst, w.Rows));
                if (p >= 2)
                    ms[a].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }
        for (int a = 0; a < arms.Length; a++)
        {
            ms[a].Sort();
            double median = ms[a][ms[a].Count / 2];
            Console.WriteLine($"{names[a],-12} median {median:F2} ms ({bytes / median / 1e6:F1} GB/s), min {ms[a][0]:F2} ms over {ms[a].Count} passes");
        }
    }

    private static CpuTensor Make(CpuBackend backend, int rows, int k)
    {
        using var source = CpuTensor.Allocate([rows, k]);
        var rng = new Random(rows + k);
        foreach (ref float v in source.F32)
            v = (float)(rng.NextDouble() * 2 - 1);
        return (CpuTensor)backend.QuantizeInt8(source);
    }

    private static readonly Dictionary<int, CpuTensor> Views = [];

    // A [1, rows] output over the first elements of dst (the tensor only names the shape).
    private static unsafe CpuTensor Out(CpuTensor dst, int rows)
    {
        if (!Views.TryGetValue(rows, out var view))
            Views[rows] = view = CpuTensor.Borrow(Pagoda.Backends.DType.F32, [1, rows], dst.Pointer);
        return view;
    }
}
