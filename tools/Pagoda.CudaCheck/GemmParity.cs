using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Cuda;
using Pagoda.Loading;

namespace Pagoda.CudaCheck;

/// <summary>
/// The fixed-order GEMM (16-bit types): every variant against the CPU backend's Linear, and bitwise row
/// invariance — a row's output is the same computed alone, among the first n rows, or by any variant.
/// </summary>
public static class GemmParity
{
    /// <summary>Runs the checks for <paramref name="dtype"/>; returns the failures (each line printed).</summary>
    public static List<string> Run(DType dtype, CudaDevice device, TextWriter log)
    {
        var failures = new List<string>();
        if (dtype == DType.F32)
            return failures;
        var rng = new Random(7 + (int)dtype);
        using var cpu = new CpuBackend();
        // Batch-invariant mode: every row count takes a fixed-order variant (by default more than 8 rows go to cuBLAS).
        using var gpu = new CudaBackend(dtype, device, options: new BackendOptions { BatchInvariant = true });
        using var store = WeightStore.CreateDummy(Path.GetTempPath(), DType.BF16);
        const int rows = 300;
        // (outputs, k): a partial 64-row tile and a last chunk of 32 (6 chunks); one short chunk; a long reduction.
        foreach (var (m, k, withBias) in new[] { (200, 1312, true), (72, 96, false), (136, 4864, false) })
        {
            var w = (C: cpu.LoadWeight(store.View($"g{m}.w", m, k)), G: gpu.LoadWeight(store.View($"g{m}.w", m, k)));
            (Tensor C, Tensor G)? b = withBias ? (cpu.LoadWeight(store.View($"g{m}.b", m)), gpu.LoadWeight(store.View($"g{m}.b", m))) : null;
            var data = new float[rows * k];
            for (int i = 0; i < data.Length; i++)
                data[i] = (float)(rng.NextDouble() * 2 - 1);
            // Inputs rounded to the element type first, so the CPU sees exactly the GPU's x.
            using var xAll = gpu.Upload(data, rows, k);
            gpu.CopyToHost(xAll, data);
            var xc = CpuTensor.Allocate([rows, k]);
            data.CopyTo(xc.F32);
            var yc = cpu.Empty(rows, m);
            cpu.Linear(xc, w.C, b?.C, yc);
            var reference = ((CpuTensor)yc).F32.ToArray();

            float[] Gpu(int first, int n, int? variant)
            {
                using var x = gpu.Upload(data.AsSpan(first * k, n * k), n, k);
                using var y = gpu.Empty(n, m);
                gpu.GemmVariant = variant;
                gpu.Linear(x, w.G, b?.G, y);
                gpu.GemmVariant = null;
                var host = new float[n * m];
                gpu.CopyToHost(y, host);
                return host;
            }

            var canon = Gpu(0, rows, 5);
            double num = 0, den = 0;
            for (int i = 0; i < canon.Length; i++)
            {
                num += (double)(canon[i] - reference[i]) * (canon[i] - reference[i]);
                den += (double)reference[i] * reference[i];
            }
            double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
            Report(rel <= 1e-2 && !canon.Any(float.IsNaN), $"gemm {m}x{k}{(withBias ? " + bias" : "")} vs CPU", $"rel {rel:E2} (tol 1E-02)");

            var mismatches = new List<string>();
            foreach (int n in new[] { 1, 3, 8, 13, 32, 40, 200, rows })
            {
                for (int v = 0; v < 6; v++)
                {
                    if (!Gpu(0, n, v).AsSpan().SequenceEqual(canon.AsSpan(0, n * m)))
                        mismatches.Add($"variant {v} n {n}");
                }
                if (!Gpu(0, n, null).AsSpan().SequenceEqual(canon.AsSpan(0, n * m)))
                    mismatches.Add($"chosen variant n {n}");
            }
            foreach (int r in new[] { 5, rows - 1 })
            {
                if (!Gpu(r, 1, null).AsSpan().SequenceEqual(canon.AsSpan(r * m, m)))
                    mismatches.Add($"row {r} alone");
            }
            Report(mismatches.Count == 0, $"gemm {m}x{k} row invariance", mismatches.Count == 0
                ? "every variant, 1-300 rows, a row alone (bitwise)" : string.Join(", ", mismatches.Take(6)));
        }
        return failures;

        void Report(bool ok, string what, string detail)
        {
            string line = $"  {(ok ? "PASS" : "FAIL")} {dtype,-4} {what,-34} {detail}";
            log.WriteLine(line);
            if (!ok)
                failures.Add(line);
        }
    }
}
