using Pagoda.Execution;
using Pagoda.Loading;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The managed SIMD backend. Weights stay memory-mapped in their stored dtype; activations and the KV
/// pool are float32 native buffers.
/// </summary>
public sealed unsafe class CpuBackend : IBackend
{
    /// <inheritdoc />
    public string Name => "cpu";

    /// <inheritdoc />
    public Tensor LoadWeight(WeightStore store, string name, params int[] shape)
    {
        var (file, info) = store.Get(name, shape);
        return CpuTensor.Borrow(info.DType, shape, file.GetPointer(info));
    }

    /// <inheritdoc />
    public Tensor Empty(params int[] shape) => CpuTensor.Allocate(shape);

    /// <inheritdoc />
    public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth)
    {
        int slots = checked(numBlocks * blockSize);
        var keys = new Tensor[numLayers];
        var values = new Tensor[numLayers];
        for (int l = 0; l < numLayers; l++)
        {
            keys[l] = CpuTensor.Allocate([slots, kvWidth], zero: false);
            values[l] = CpuTensor.Allocate([slots, kvWidth], zero: false);
        }
        return new PagedKvCache(keys, values, numBlocks, blockSize);
    }

    /// <inheritdoc />
    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst)
    {
        var t = (CpuTensor)table;
        var d = (CpuTensor)dst;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)t.Rows)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} is outside the vocabulary (0..{t.Rows - 1})");
            Vec.ReadRow(t, ids[i], d.Row(i));
        }
    }

    /// <inheritdoc />
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst) =>
        Gemm.Linear((CpuTensor)x, (CpuTensor)weight, (CpuTensor?)bias, (CpuTensor)dst);

    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst)
    {
        float[] w = Gemm.ReadVector((CpuTensor)weight);
        var src = ((CpuTensor)x).F32;
        var d = ((CpuTensor)dst).F32;
        for (int off = 0; off < src.Length; off += w.Length)
            Norm.RmsNorm(src.Slice(off, w.Length), w, eps, d.Slice(off, w.Length));
    }

    /// <inheritdoc />
    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst)
    {
        float[] w = Gemm.ReadVector((CpuTensor)weight), b = Gemm.ReadVector((CpuTensor)bias);
        var src = (CpuTensor)x;
        var d = (CpuTensor)dst;
        for (int r = 0; r < src.Rows; r++)
            Norm.LayerNorm(src.Row(r), w, b, eps, d.Row(r));
    }

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor dst) =>
        Activation.Add(((CpuTensor)a).F32, ((CpuTensor)b).F32, ((CpuTensor)dst).F32);

    /// <inheritdoc />
    public void SiluMul(Tensor gate, Tensor up, Tensor dst) =>
        Activation.SiluMul(((CpuTensor)gate).F32, ((CpuTensor)up).F32, ((CpuTensor)dst).F32);

    /// <inheritdoc />
    public void Relu(Tensor x) => Activation.Relu(((CpuTensor)x).F32);

    /// <inheritdoc />
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq)
    {
        var t = (CpuTensor)x;
        for (int r = 0; r < t.Rows; r++)
            Cpu.Rope.Apply(t.Row(r), headDim, positions[r], invFreq);
    }

    /// <inheritdoc />
    public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping)
    {
        var ks = (CpuTensor)k;
        var vs = (CpuTensor)v;
        var kc = (CpuTensor)cache.Keys[layer];
        var vc = (CpuTensor)cache.Values[layer];
        for (int i = 0; i < slotMapping.Length; i++)
        {
            ks.Row(i).CopyTo(kc.Row(slotMapping[i]));
            vs.Row(i).CopyTo(vc.Row(slotMapping[i]));
        }
    }

    /// <inheritdoc />
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, int numHeads, int numKvHeads,
        int headDim, float scale, Tensor dst) =>
        Attention.Paged((CpuTensor)q, cache, layer, batch, numHeads, numKvHeads, headDim, scale, (CpuTensor)dst);

    /// <inheritdoc />
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst)
    {
        var s = (CpuTensor)x;
        var d = (CpuTensor)dst;
        for (int i = 0; i < rows.Length; i++)
            s.Row(rows[i]).CopyTo(d.Row(i));
    }

    /// <inheritdoc />
    public void CopyToHost(Tensor src, Span<float> dst) => ((CpuTensor)src).F32.CopyTo(dst);

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
