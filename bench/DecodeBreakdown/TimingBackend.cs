using System.Diagnostics;
using Pagoda.Backends;

namespace DecodeBreakdown;

/// <summary>
/// Forwards every op to the CPU backend and adds its wall time to a per-op-kind total while
/// <see cref="Recording"/> is on (Linear ops are keyed by weight shape and dtype). Bench-only: the
/// engine's own hot path carries no timing.
/// </summary>
internal sealed class TimingBackend(IBackend inner) : IBackend, IMergedProjectionOps
{
    private readonly IMergedProjectionOps _merged = (IMergedProjectionOps)inner;

    public sealed class Entry
    {
        public long Ticks, Calls, Bytes;
    }

    public Dictionary<string, Entry> Totals { get; } = new();

    public bool Recording { get; set; }

    public string Name => inner.Name;

    private void Add(string key, long start, long bytes = 0)
    {
        long end = Stopwatch.GetTimestamp();
        if (!Recording)
            return;
        if (!Totals.TryGetValue(key, out var e))
            Totals[key] = e = new Entry();
        e.Ticks += end - start;
        e.Calls++;
        e.Bytes += bytes;
    }

    public Tensor LoadWeight(HostWeight weight) => inner.LoadWeight(weight);

    public Tensor QuantizeInt8(Tensor weight) => inner.QuantizeInt8(weight);

    public Tensor Empty(params int[] shape)
    {
        long t = Stopwatch.GetTimestamp();
        var r = inner.Empty(shape);
        Add("Empty (buffers)", t);
        return r;
    }

    public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth) =>
        inner.AllocateKvCache(numLayers, numBlocks, blockSize, kvWidth);

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Embedding(table, ids, dst);
        Add("Embedding", t);
    }

    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Linear(x, weight, bias, dst);
        long elementBytes = weight.DType switch { DType.I8 => 1, DType.F32 => 4, _ => 2 };
        Add($"Linear {weight.DType} [{weight.Rows}, {weight.Cols}]", t, weight.NumElements * elementBytes);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.RmsNorm(x, weight, eps, dst);
        Add("RmsNorm", t);
    }

    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.LayerNorm(x, weight, bias, eps, dst);
        Add("LayerNorm", t);
    }

    public void Add(Tensor a, Tensor b, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Add(a, b, dst);
        Add("Add", t);
    }

    public void SiluMul(Tensor gate, Tensor up, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.SiluMul(gate, up, dst);
        Add("SiluMul", t);
    }

    public void GeluTanhMul(Tensor gate, Tensor up, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.GeluTanhMul(gate, up, dst);
        Add("GeluTanhMul", t);
    }

    public void Scale(Tensor x, float factor)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Scale(x, factor);
        Add("Scale", t);
    }

    public void SoftCap(Tensor x, float cap)
    {
        long t = Stopwatch.GetTimestamp();
        inner.SoftCap(x, cap);
        Add("SoftCap", t);
    }

    public void Relu(Tensor x)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Relu(x);
        Add("Relu", t);
    }

    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Rope(x, headDim, positions, rope);
        Add("Rope", t);
    }

    public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping)
    {
        long t = Stopwatch.GetTimestamp();
        inner.StoreKv(k, v, cache, layer, slotMapping);
        Add("StoreKv", t);
    }

    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.PagedAttention(q, cache, layer, batch, spec, dst);
        Add("PagedAttention", t);
    }

    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.GatherRows(x, rows, dst);
        Add("GatherRows", t);
    }

    public void CopyToHost(Tensor src, Span<float> dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.CopyToHost(src, dst);
        Add("CopyToHost", t);
    }

    public Tensor StackRows(params Tensor[] parts) => _merged.StackRows(parts);

    public void QkvRopeStore(Tensor qkv, Tensor? bias, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<int> positions,
        RotaryParams rope, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping, Tensor q)
    {
        long t = Stopwatch.GetTimestamp();
        _merged.QkvRopeStore(qkv, bias, numHeads, numKvHeads, headDim, positions, rope, cache, layer, slotMapping, q);
        Add("QkvRopeStore", t);
    }

    public void SiluMulStacked(Tensor gateUp, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        _merged.SiluMulStacked(gateUp, dst);
        Add("SiluMulStacked", t);
    }

    public void Dispose() => inner.Dispose();
}
