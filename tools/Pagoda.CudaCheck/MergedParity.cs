using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Cuda;
using Pagoda.Loading;

namespace Pagoda.CudaCheck;

/// <summary>
/// Stacked projections on the GPU (one q/k/v GEMM + bias/RoPE/KV-store kernel, one gate/up GEMM + SiLU·mul)
/// against the CPU backend's separate ops, under the same tolerances as <see cref="Parity"/>.
/// </summary>
public static class MergedParity
{
    /// <summary>Runs the checks for <paramref name="dtype"/>; returns the failures (each line printed).</summary>
    public static List<string> Run(DType dtype, CudaDevice device, TextWriter log)
    {
        double tol = dtype == DType.F32 ? 2e-5 : 1.5e-2;
        var failures = new List<string>();
        var rng = new Random(99 + (int)dtype);
        using var cpu = new CpuBackend();
        using var gpu = new CudaBackend(dtype, device);
        using var store = WeightStore.CreateDummy(Path.GetTempPath(), DType.BF16);
        const int n = 37, h = 256, ff = 512, heads = 8, kvHeads = 2, hd = 64, bs = 16, blocks = 64;
        int qw = heads * hd, kw = kvHeads * hd;

        void Check(string what, Tensor c, Tensor g)
        {
            var a = ((CpuTensor)c).F32.ToArray();
            var b = new float[a.Length];
            gpu.CopyToHost(g, b);
            double num = 0, den = 0;
            bool nan = false;
            for (int i = 0; i < a.Length; i++)
            {
                nan |= float.IsNaN(b[i]);
                num += (double)(a[i] - b[i]) * (a[i] - b[i]);
                den += (double)a[i] * a[i];
            }
            double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
            bool ok = !nan && rel <= tol;
            string line = $"  {(ok ? "PASS" : "FAIL")} {dtype,-4} {what,-34} rel {rel:E2} (tol {tol:E0})";
            log.WriteLine(line);
            if (!ok)
                failures.Add(line);
        }

        var data = new float[n * h];
        for (int i = 0; i < data.Length; i++)
            data[i] = (float)(rng.NextDouble() * 2 - 1);
        var xc = CpuTensor.Allocate([n, h]);
        data.CopyTo(xc.F32);
        using var xg = gpu.Upload(data, n, h);
        (Tensor C, Tensor G) W(string name, params int[] shape) => (cpu.LoadWeight(store.View(name, shape)), gpu.LoadWeight(store.View(name, shape)));
        var (wq, wk, wv) = (W("m.q", qw, h), W("m.k", kw, h), W("m.v", kw, h));
        var (bq, bk, bv) = (W("m.bq", qw), W("m.bk", kw), W("m.bv", kw));
        var (wg, wu) = (W("m.gate", ff, h), W("m.up", ff, h));
        var wqkv = gpu.StackRows(wq.G, wk.G, wv.G);
        var bqkv = gpu.StackRows(bq.G, bk.G, bv.G);
        var wgu = gpu.StackRows(wg.G, wu.G);

        int[] positions = Enumerable.Range(0, n).Select(i => i * 53 % 3000).ToArray();
        int[] slots = Enumerable.Range(0, blocks * bs).OrderBy(_ => rng.Next()).Take(n).ToArray();
        float[] invFreq = Pagoda.Models.RotaryEmbedding.InverseFrequencies(hd, 1_000_000, null);

        void Qkv(RotaryParams rope, string label)
        {
            // CPU: the separate ops as DecoderModel issues them without the capability.
            using var cc = cpu.AllocateKvCache(1, blocks, bs, kw);
            var (qc, kc, vc) = (cpu.Empty(n, qw), cpu.Empty(n, kw), cpu.Empty(n, kw));
            cpu.Linear(xc, wq.C, bq.C, qc); cpu.Linear(xc, wk.C, bk.C, kc); cpu.Linear(xc, wv.C, bv.C, vc);
            cpu.Rope(qc, hd, positions, rope); cpu.Rope(kc, hd, positions, rope);
            cpu.StoreKv(kc, vc, cc, 0, slots);

            // GPU: one GEMM over the stacked weights, then the fused kernel.
            using var gc = gpu.AllocateKvCache(1, blocks, bs, kw);
            using var qkv = gpu.Empty(n, qw + 2 * kw);
            using var qg = gpu.Empty(n, qw);
            gpu.Linear(xg, wqkv, null, qkv);
            gpu.QkvRopeStore(qkv, bqkv, heads, kvHeads, hd, positions, rope, gc, 0, slots, qg);
            Check($"stacked qkv{label}: q (bias + rope)", qc, qg);
            var (kcOut, kgOut) = (cpu.Empty(n, kw), gpu.Empty(n, kw));
            cpu.GatherRows(cc.Keys[0], slots, kcOut); gpu.GatherRows(gc.Keys[0], slots, kgOut);
            Check($"stacked qkv{label}: k in the pool", kcOut, kgOut);
            cpu.GatherRows(cc.Values[0], slots, kcOut); gpu.GatherRows(gc.Values[0], slots, kgOut);
            Check($"stacked qkv{label}: v in the pool", kcOut, kgOut);
        }
        Qkv(new RotaryParams(invFreq), "");
        // Phi-style partial rotary (3/4 of each head) with an attention factor: the rest of each head is copied.
        Qkv(new RotaryParams(invFreq[..(hd * 3 / 8)], 1.2f), " partial");

        var (gateC, upC) = (cpu.Empty(n, ff), cpu.Empty(n, ff));
        cpu.Linear(xc, wg.C, null, gateC); cpu.Linear(xc, wu.C, null, upC);
        cpu.SiluMul(gateC, upC, gateC);
        using var gu = gpu.Empty(n, 2 * ff);
        using var act = gpu.Empty(n, ff);
        gpu.Linear(xg, wgu, null, gu);
        gpu.SiluMulStacked(gu, act);
        Check("stacked gate/up + silu_mul", gateC, act);

        return failures;
    }
}
