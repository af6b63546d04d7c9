using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Mixture-of-experts layers on the GPU (moe.cu): route, sort the (token, rank) pairs by expert, grouped gate/up
/// products, activation, grouped down products, weighted sum. No host synchronisation, so decode graphs capture it.
/// </summary>
public sealed unsafe partial class CudaBackend : IMoeOps
{
    /// <inheritdoc />
    public MoeExperts PrepareExperts(MoeExpertWeights stored) => CudaMoeExperts.Prepare(this, stored);

    /// <inheritdoc />
    public void FusedMoe(Tensor x, Tensor routerLogits, MoeExperts experts, MoeSpec spec, Tensor dst)
    {
        var ex = (CudaMoeExperts)experts;
        int n = x.Rows, k = spec.TopK, h = ex.HiddenSize, ff = ex.IntermediateSize, numExperts = ex.NumExperts, pairs = n * k;
        if (x.Cols != h || dst.Rows != n || dst.Cols != h || routerLogits.Rows != n || routerLogits.Cols != numExperts)
            throw new ArgumentException($"FusedMoe shapes: x [{n}, {x.Cols}], logits [{routerLogits.Rows}, {routerLogits.Cols}], dst [{dst.Rows}, {dst.Cols}] for {numExperts} experts of [{h} → {ff}]");
        if (k < 1 || k > Math.Min(8, numExperts))
            throw new NotSupportedException($"CUDA MoE routes to 1..8 experts per token, not {k} (of {numExperts})");
        if (h % 8 != 0 || ff % 8 != 0)
            throw new NotSupportedException($"CUDA MoE needs hidden and intermediate sizes that are multiples of 8, not {h} and {ff}");
        if (Skip) return;
        using var ids = Ints(pairs);                                  // [pairs] each pair's expert
        using var weights = RentFloats(pairs);                       // [pairs] its routing weight
        using var offsets = Ints(numExperts + 1);                    // [E + 1] each expert's first sorted pair
        using var cursor = Ints(numExperts);                         // [E] scratch
        using var sorted = Ints(pairs);                              // [pairs] pairs in expert order
        using var gateUp = Empty(pairs, 2 * ff);                     // [pairs, 2·ff] gate | up
        using var act = Empty(pairs, ff);                            // [pairs, ff]
        using var ys = Empty(pairs, h);                              // [pairs, hidden] each expert's output
        _k.Launch(_k.MoeRoute, "moe_route", S, (uint)n, 1, 1, 32, P(routerLogits), P(ids), P(weights), numExperts, k,
            spec.Scoring == MoeScoring.SoftmaxTopK ? 0 : 1, spec.Renormalize ? 1 : 0);
        _k.Launch(_k.MoeAlign, "moe_align", S, 1, 1, 1, 1024, P(ids), pairs, numExperts, P(offsets), P(cursor), P(sorted));
        _k.Launch(_k.MoeGroupedGemv, "moe_grouped_gemv", S, (uint)numExperts, (uint)((2 * ff + 7) / 8), 1, 256,
            P(x), k, P(sorted), P(offsets), ex.Gate, ex.Up, ff, ex.GateUpBias, P(gateUp), h, 2 * ff);
        _k.Launch(_k.MoeActivation, "moe_activation", S, Grid((long)pairs * ff), 1, 1, 256, P(gateUp), P(act), (long)pairs * ff, ff,
            spec.Activation == MoeActivation.SiluGated ? 0 : 1, spec.SwigluAlpha, spec.SwigluLimit);
        _k.Launch(_k.MoeGroupedGemv, "moe_grouped_gemv", S, (uint)numExperts, (uint)((h + 7) / 8), 1, 256,
            P(act), 1, P(sorted), P(offsets), ex.Down, ex.Down, h, ex.DownBias, P(ys), ff, h);
        _k.Launch(_k.MoeCombine, "moe_combine", S, (uint)n, 1, 1, RowThreads(h), P(ys), P(weights), P(dst), k, h);
    }

    private CudaTensor Ints(int count) => new(DType.F32, [count], _pool.Rent(count * 4L), _pool);

    /// <summary>gpt-oss's stacked [E, in, out] experts as [E, out, in] rows (gate/up de-interleaved), made once at load.</summary>
    internal CudaTensor TransposeExperts(Tensor stacked, bool interleaved)
    {
        _device.MakeCurrent();
        // A bias [E, 2·ff] is a stack of one-row matrices [1, 2·ff]: its "transpose" [2·ff, 1] only de-interleaves it.
        int e = stacked.Shape[0], rows = stacked.Shape.Length == 3 ? stacked.Shape[1] : 1, cols = stacked.Shape[^1];
        int[] shape = stacked.Shape.Length == 3 ? [e, cols, rows] : [e, cols];
        var t = new CudaTensor(DType, shape, new DeviceMemory((long)e * rows * cols * _elemSize), null);
        _k.Launch(_k.MoeTranspose, "moe_transpose", S, Grid((long)rows * cols), (uint)e, 1, 256, P(stacked), t.Ptr, rows, cols, interleaved ? 1 : 0);
        Sync();
        return t;
    }

    /// <summary>Device array of 64-bit addresses (one per expert), owned by the caller.</summary>
    internal DeviceMemory Addresses(IReadOnlyList<ulong> addresses)
    {
        _device.MakeCurrent();
        var m = new DeviceMemory(Math.Max(1, addresses.Count) * 8L);
        var host = addresses.ToArray();
        fixed (ulong* p = host)
            Driver.Check(Driver.cuMemcpyHtoD(m.Ptr, p, (nuint)(host.Length * 8)), "cuMemcpyHtoD_v2");
        return m;
    }

    internal static ulong Address(Tensor t) => P(t);

    internal int ElementSize => _elemSize;
}
