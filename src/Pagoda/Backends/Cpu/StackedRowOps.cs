namespace Pagoda.Backends.Cpu;

/// <summary>
/// The row ops that consume a stacked projection's output: q/k/v bias + RoPE + KV store, and SiLU·mul of
/// gate | up. Each row is computed exactly as the separate ops compute it (bias added to the finished
/// dot, the same <see cref="Rope.Apply"/> and <see cref="Activation.SiluMul"/>), so stacking never changes
/// a value. Small batches run inline on the caller, large ones split by rows, as <see cref="RowOps"/>.
/// </summary>
internal sealed unsafe class StackedRowOps(WorkerPool pool) : PoolJob
{
    private bool _qkv;
    private float* _src, _dst, _keys, _values;
    private float[]? _bias;
    private int _rows, _srcCols, _dstCols, _kvCols, _numHeads, _headDim, _rowsPerChunk;
    private int[] _positions = [], _slots = [];
    private RotaryParams? _rope;

    public void QkvRopeStore(CpuTensor qkv, CpuTensor? bias, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<int> positions,
        RotaryParams rope, CpuTensor keys, CpuTensor values, ReadOnlySpan<int> slotMapping, CpuTensor q)
    {
        int qw = numHeads * headDim, kvw = numKvHeads * headDim;
        if (qkv.Cols != qw + 2 * kvw || q.Cols != qw || q.Rows != qkv.Rows || keys.Cols != kvw || rope.RotaryDim > headDim
            || positions.Length < qkv.Rows || slotMapping.Length < qkv.Rows || (bias != null && bias.NumElements != qkv.Cols))
            throw new ArgumentException("qkv, q, the cache and the head counts disagree");
        // A job cannot hold spans; copy into arrays reused across calls instead of allocating per op.
        _positions = Fill(_positions, positions);
        _slots = Fill(_slots, slotMapping);
        _rope = rope;
        (_qkv, _bias, _numHeads, _headDim, _kvCols) = (true, bias?.AsFloatVector(), numHeads, headDim, kvw);
        _keys = (float*)keys.Pointer;
        _values = (float*)values.Pointer;
        Run(qkv, q, q.Cols);
    }

    public void SiluMul(CpuTensor gateUp, CpuTensor dst)
    {
        if (gateUp.Cols != 2 * dst.Cols || gateUp.Rows != dst.Rows)
            throw new ArgumentException("gateUp must be [n, 2·ff] for dst [n, ff]");
        (_qkv, _bias) = (false, null);
        Run(gateUp, dst, dst.Cols);
    }

    private static int[] Fill(int[] buffer, ReadOnlySpan<int> values)
    {
        if (buffer.Length < values.Length)
            buffer = new int[Math.Max(values.Length, 2 * buffer.Length)];
        values.CopyTo(buffer);
        return buffer;
    }

    private void Run(CpuTensor src, CpuTensor dst, int dstCols)
    {
        (_rows, _srcCols, _dstCols) = (src.Rows, src.Cols, dstCols);
        _src = (float*)src.Pointer;
        _dst = (float*)dst.Pointer;
        _rowsPerChunk = RowOps.RowsPerChunk(_rows, _srcCols);
        try
        {
            pool.Run(this, (_rows + _rowsPerChunk - 1) / _rowsPerChunk);
        }
        finally
        {
            _src = _dst = _keys = _values = null;
            _bias = null;
        }
    }

    public override void Execute(int chunk, int worker)
    {
        int r0 = chunk * _rowsPerChunk, r1 = Math.Min(_rows, r0 + _rowsPerChunk);
        Span<float> cos = _qkv ? stackalloc float[_headDim / 2] : default;
        Span<float> sin = _qkv ? stackalloc float[_headDim / 2] : default;
        for (int r = r0; r < r1; r++)
        {
            var src = new Span<float>(_src + (long)r * _srcCols, _srcCols);
            var dst = new Span<float>(_dst + (long)r * _dstCols, _dstCols);
            if (!_qkv)
            {
                Activation.SiluMul(src[.._dstCols], src[_dstCols..], dst);
                continue;
            }
            if (_bias != null)
                Activation.Add(src, _bias, src);
            int qw = _numHeads * _headDim, kvw = _kvCols;
            src[..qw].CopyTo(dst);
            Rope.Apply(dst, _headDim, _positions[r], _rope!, cos, sin);
            var k = src.Slice(qw, kvw);
            Rope.Apply(k, _headDim, _positions[r], _rope!, cos, sin);
            long slot = _slots[r];
            k.CopyTo(new Span<float>(_keys + slot * kvw, kvw));
            src.Slice(qw + kvw, kvw).CopyTo(new Span<float>(_values + slot * kvw, kvw));
        }
    }
}
