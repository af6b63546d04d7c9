namespace Pagoda.Backends.Cpu;

/// <summary>
/// The managed SIMD backend. Weights stay memory-mapped in their stored dtype (or become int8 copies
/// under weight-only quantization); activations and the KV pool are float32 native buffers. Kernels run
/// on a process-wide persistent <see cref="WorkerPool"/> (one worker per core unless
/// <see cref="BackendOptions.CpuThreads"/> says otherwise).
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    private readonly WorkerPool _pool;
    private readonly BufferCache _buffers = new();
    private readonly Gemm _gemm;
    private readonly Attention _attention;
    private readonly RowOps _rows;
    private readonly StackedRowOps _stackedRows;

    /// <summary>
    /// Creates the backend over the worker pool of <see cref="BackendOptions.NumCpuThreads"/> threads.
    /// With <see cref="BackendOptions.BatchInvariant"/> every row's output is independent of the batch, bit for bit:
    /// a single input row's Linear ops then use the 4-row GEMV in the panel GEMM's reduction order. Off (the
    /// default), bf16/f16/f32 weights are read one row at a time in that kernel's own order, which is faster,
    /// so a request's last bits may differ between decoding alone and in a batch.
    /// </summary>
    public CpuBackend(BackendOptions? options = null)
    {
        Options = options ?? new BackendOptions();
        _pool = WorkerPool.ForThreads(Options.NumCpuThreads);
        bool wide = Options.UseVector512;
        _gemm = new Gemm(_pool, wide) { BatchInvariant = Options.BatchInvariant };
        _attention = new Attention(_pool, wide);
        _rows = new RowOps(_pool);
        _stackedRows = new StackedRowOps(_pool);
    }

    /// <summary>The switches this backend was made with.</summary>
    public BackendOptions Options { get; }

    /// <summary>Worker threads the kernels use (including the calling thread).</summary>
    public int NumThreads => _pool.Size;

    /// <inheritdoc />
    public string Name => "cpu";

    /// <inheritdoc />
    public Tensor LoadWeight(HostWeight weight) => CpuTensor.Borrow(weight.DType, weight.Shape, (byte*)weight.Data);

    /// <inheritdoc />
    public Tensor QuantizeInt8(Tensor weight) => Quantize.Int8((CpuTensor)weight, _pool);

    /// <inheritdoc />
    public Tensor Empty(params int[] shape) => CpuTensor.Allocate(shape, zero: true, _buffers);

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
    public void EmbeddingShard(Tensor table, ReadOnlySpan<int> ids, int firstId, Tensor dst)
    {
        var t = (CpuTensor)table;
        var d = (CpuTensor)dst;
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} is negative");
            if ((uint)(ids[i] - firstId) < (uint)t.Rows)
                Vec.ReadRow(t, ids[i] - firstId, d.Row(i));
            else
                d.Row(i).Clear();
        }
    }

    /// <inheritdoc />
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst) =>
        _gemm.Linear((CpuTensor)x, (CpuTensor)weight, (CpuTensor?)bias, (CpuTensor)dst);

    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst) =>
        _rows.RmsNorm((CpuTensor)x, (CpuTensor)weight, eps, (CpuTensor)dst);

    /// <inheritdoc />
    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst) =>
        _rows.LayerNorm((CpuTensor)x, (CpuTensor)weight, (CpuTensor)bias, eps, (CpuTensor)dst);

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor dst) => _rows.Add((CpuTensor)a, (CpuTensor)b, (CpuTensor)dst);

    /// <inheritdoc />
    public void SiluMul(Tensor gate, Tensor up, Tensor dst) => _rows.SiluMul((CpuTensor)gate, (CpuTensor)up, (CpuTensor)dst);

    /// <inheritdoc />
    public void GeluTanhMul(Tensor gate, Tensor up, Tensor dst) => _rows.GeluTanhMul((CpuTensor)gate, (CpuTensor)up, (CpuTensor)dst);

    /// <inheritdoc />
    public void Scale(Tensor x, float factor) => _rows.Scale((CpuTensor)x, factor);

    /// <inheritdoc />
    public void SoftCap(Tensor x, float cap) => _rows.SoftCap((CpuTensor)x, cap);

    /// <inheritdoc />
    public void Relu(Tensor x) => _rows.Relu((CpuTensor)x);

    /// <inheritdoc />
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope) =>
        _rows.Rope((CpuTensor)x, headDim, positions, rope);

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
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst) =>
        _attention.Paged((CpuTensor)q, cache, layer, batch, spec, (CpuTensor)dst);

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
    public void Dispose() => _buffers.Dispose();
}
