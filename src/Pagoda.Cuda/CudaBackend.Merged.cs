using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>Stacked q/k/v and gate/up projections: one GEMM each, one kernel after it.</summary>
public sealed unsafe partial class CudaBackend : IMergedProjectionOps
{
    /// <inheritdoc />
    public Tensor StackRows(params Tensor[] parts)
    {
        _device.MakeCurrent();
        if (parts.Length == 0)
            throw new ArgumentException("nothing to stack", nameof(parts));
        int cols = parts[0].Cols;
        bool vectors = parts[0].Shape.Length == 1;
        if (parts.Any(p => p.DType != DType || (p.Shape.Length == 1) != vectors || (!vectors && p.Cols != cols)))
            throw new ArgumentException("stacked parts need one dtype and one column count", nameof(parts));
        long total = parts.Sum(p => p.NumElements);
        int[] shape = vectors ? [checked((int)total)] : [checked((int)(total / cols)), cols];
        var t = new CudaTensor(DType, shape, new DeviceMemory(total * _elemSize), null);
        long offset = 0;
        foreach (var p in parts)
        {
            long bytes = p.NumElements * _elemSize;
            Driver.Check(Driver.cuMemcpyDtoDAsync(t.Ptr + (ulong)offset, P(p), (nuint)bytes, S), "cuMemcpyDtoDAsync_v2");
            offset += bytes;
        }
        Sync(); // the parts are freed below
        foreach (var p in parts)
        {
            _owned.Remove(p);
            p.Dispose();
        }
        _owned.Add(t);
        return t;
    }

    /// <inheritdoc />
    public void QkvRopeStore(Tensor qkv, Tensor? bias, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<int> positions,
        RotaryParams rope, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping, Tensor q)
    {
        CheckRotary(rope, headDim);
        ulong pos = UploadInts("positions", positions);
        ulong freq = UploadFloats("inv_freq", rope.InvFreq);
        ulong slots = UploadInts("slots", slotMapping);
        if (Skip) return;
        if (qkv.Cols != (numHeads + 2 * numKvHeads) * headDim || q.Cols != numHeads * headDim || headDim % 2 != 0)
            throw new ArgumentException("qkv, q and the head counts disagree");
        _k.Launch(_k.QkvRopeStore, "qkv_rope_store", S, (uint)qkv.Rows, 1, 1, RowThreads(qkv.Cols / 2),
            P(qkv), bias == null ? 0UL : P(bias), P(q), P(cache.Keys[layer]), P(cache.Values[layer]), slots, pos, freq,
            numHeads, numKvHeads, headDim, rope.InvFreq.Length, rope.AttentionFactor);
    }

    /// <inheritdoc />
    public void SiluMulStacked(Tensor gateUp, Tensor dst)
    {
        if (Skip) return;
        if (gateUp.Cols != 2 * dst.Cols)
            throw new ArgumentException("gateUp must be [n, 2·ff] for dst [n, ff]");
        _k.Launch(_k.SiluMulStacked, "silu_mul_stacked", S, Grid(dst.NumElements), 1, 1, 256, P(gateUp), P(dst), dst.NumElements, dst.Cols);
    }
}
