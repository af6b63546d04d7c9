using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Cuda;
using Pagoda.Loading;

namespace Pagoda.CudaCheck;

/// <summary>
/// The fused MoE op on the GPU against the CPU backend's, over the same random experts in both stored forms: per
/// expert (Mixtral, Qwen3-MoE: softmax then top-k, SiLU-gated) and stacked (gpt-oss: [E, in, out] with interleaved
/// gate/up, biases, top-k then softmax, clamped SwiGLU). Router logits are distinct multiples of 1/4 (exact in every
/// dtype), so both sides pick the same experts.
/// </summary>
public static class MoeParity
{
    /// <summary>Runs the checks for <paramref name="dtype"/>; returns the failures (each line printed).</summary>
    public static List<string> Run(DType dtype, CudaDevice device, TextWriter log)
    {
        double tol = dtype == DType.F32 ? 2e-5 : 2e-2;
        var failures = new List<string>();
        var rng = new Random(31 + (int)dtype);
        using var cpu = new CpuBackend();
        using var gpu = new CudaBackend(dtype, device);
        using var store = WeightStore.CreateDummy(Path.GetTempPath(), DType.BF16);
        const int n = 29, h = 128, ff = 96, numExperts = 8;

        (Tensor C, Tensor G) Input(float[] data, int rows, int cols)
        {
            var c = CpuTensor.Allocate([rows, cols]);
            data.CopyTo(c.F32);
            return (c, gpu.Upload(data, rows, cols));
        }
        // Inputs of ±256: the dummy weights are ±1e-3, so inputs of order 1 left the SiLU-gated experts' outputs at a
        // few 1e-8, under float16's smallest subnormal (6e-8): the comparison measured underflow, not the kernels.
        var x = Input(Enumerable.Range(0, n * h).Select(_ => (float)(rng.NextDouble() * 512 - 256)).ToArray(), n, h);
        var logits = Input(Enumerable.Range(0, n).SelectMany(_ => Enumerable.Range(0, numExperts).OrderBy(_ => rng.Next()))
            .Select(r => r * 0.25f - 1f).ToArray(), n, numExperts);
        (Tensor C, Tensor G) W(string name, params int[] shape) => (cpu.LoadWeight(store.View(name, shape)), gpu.LoadWeight(store.View(name, shape)));
        (Tensor[] C, Tensor[] G) Each(string name, int rows, int cols)
        {
            var parts = Enumerable.Range(0, numExperts).Select(e => W($"moe.{e}.{name}", rows, cols)).ToArray();
            return (parts.Select(p => p.C).ToArray(), parts.Select(p => p.G).ToArray());
        }
        var (gate, up, down) = (Each("gate", ff, h), Each("up", ff, h), Each("down", h, ff));
        var perC = new MoeExpertWeights(numExperts, h, ff) { Gate = gate.C, Up = up.C, Down = down.C };
        var perG = new MoeExpertWeights(numExperts, h, ff) { Gate = gate.G, Up = up.G, Down = down.G };
        var (gu, gub, dn, db) = (W("moe.gate_up", numExperts, h, 2 * ff), W("moe.gate_up_bias", numExperts, 2 * ff),
            W("moe.down", numExperts, ff, h), W("moe.down_bias", numExperts, h));
        var stackedC = new MoeExpertWeights(numExperts, h, ff) { GateUp = gu.C, GateUpBias = gub.C, DownStacked = dn.C, DownBias = db.C };
        var stackedG = new MoeExpertWeights(numExperts, h, ff) { GateUp = gu.G, GateUpBias = gub.G, DownStacked = dn.G, DownBias = db.G };

        var cases = new (string What, MoeExpertWeights C, MoeExpertWeights G, MoeSpec Spec)[]
        {
            ("per expert, softmax top-2, renormalised, SiLU", perC, perG, new MoeSpec(2, MoeScoring.SoftmaxTopK, true, MoeActivation.SiluGated)),
            ("per expert, softmax top-3, SiLU", perC, perG, new MoeSpec(3, MoeScoring.SoftmaxTopK, false, MoeActivation.SiluGated)),
            ("stacked + biases, top-2 softmax, clamped SwiGLU", stackedC, stackedG, new MoeSpec(2, MoeScoring.TopKSoftmax, false, MoeActivation.ClampedSwiglu)),
            // A limit inside the dummy weights' range, so the clamps bind.
            ("stacked + biases, top-4 softmax, SwiGLU limit 1e-4", stackedC, stackedG,
                new MoeSpec(4, MoeScoring.TopKSoftmax, false, MoeActivation.ClampedSwiglu) { SwigluLimit = 1e-4f }),
        };
        // Each form prepared once, as a model does per layer: preparing per-expert weights stacks them and frees the parts.
        var prepared = new Dictionary<MoeExpertWeights, MoeExperts>(ReferenceEqualityComparer.Instance)
        {
            [perC] = ((IMoeOps)cpu).PrepareExperts(perC), [perG] = ((IMoeOps)gpu).PrepareExperts(perG),
            [stackedC] = ((IMoeOps)cpu).PrepareExperts(stackedC), [stackedG] = ((IMoeOps)gpu).PrepareExperts(stackedG),
        };
        foreach (var (what, wc, wg, spec) in cases)
        {
            var (ec, eg) = (prepared[wc], prepared[wg]);
            using var dc = cpu.Empty(n, h);
            using var dg = gpu.Empty(n, h);
            ((IMoeOps)cpu).FusedMoe(x.C, logits.C, ec, spec, dc);
            ((IMoeOps)gpu).FusedMoe(x.G, logits.G, eg, spec, dg);
            var a = ((CpuTensor)dc).F32.ToArray();
            var b = new float[a.Length];
            gpu.CopyToHost(dg, b);
            double num = 0, den = 0;
            for (int i = 0; i < a.Length; i++)
            {
                num += (double)(a[i] - b[i]) * (a[i] - b[i]);
                den += (double)a[i] * a[i];
            }
            double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
            bool ok = !b.Any(float.IsNaN) && rel <= tol;
            string line = $"  {(ok ? "PASS" : "FAIL")} {dtype,-4} fused_moe {what,-50} rel {rel:E2} (tol {tol:E0})";
            log.WriteLine(line);
            if (!ok)
                failures.Add(line);
        }
        foreach (var e in prepared.Values)
            e.Dispose();
        return failures;
    }
}
