namespace Pagoda.Backends.Cpu;

/// <summary>
/// The row-wise ops (norms, RoPE, SiLU·mul, GELU·mul, add, scale, ReLU) on the worker pool: small batches run inline on
/// the caller (a decode row is ~1 µs of work, less than waking a worker), large ones split by rows.
/// Each row is computed the same way whatever chunk it falls in.
/// </summary>
internal sealed unsafe class RowOps(WorkerPool pool) : PoolJob
{
    private enum Op { RmsNorm, LayerNorm, Add, SiluMul, GeluTanhMul, Scale, SoftCap, Relu, Rope }

    // Below this many elements per op the pool's wake-up costs more than it saves.
    private const int InlineElements = 16 * 1024;
    private const int ElementsPerChunk = 32 * 1024;

    /// <summary>Rows per pool chunk for row-wise work: all of them (run inline) when the job is small.</summary>
    internal static int RowsPerChunk(int rows, int cols) =>
        (long)rows * cols <= InlineElements ? rows : Math.Max(1, ElementsPerChunk / Math.Max(cols, 1));

    private Op _op;
    private float* _a, _b, _dst;
    private float[]? _w, _bias;
    private int _rows, _cols, _rowsPerChunk, _headDim;
    private float _eps, _factor;
    private int[] _positions = [];
    private RotaryParams? _rope;

    public void RmsNorm(CpuTensor x, CpuTensor weight, float eps, CpuTensor dst)
    {
        _w = weight.AsFloatVector();
        _eps = eps;
        // Groups of weight.Cols: whole rows, or heads for per-head q/k norms.
        Run(Op.RmsNorm, x, null, dst, checked((int)(x.NumElements / _w.Length)), _w.Length);
    }

    public void LayerNorm(CpuTensor x, CpuTensor weight, CpuTensor bias, float eps, CpuTensor dst)
    {
        (_w, _bias, _eps) = (weight.AsFloatVector(), bias.AsFloatVector(), eps);
        Run(Op.LayerNorm, x, null, dst, x.Rows, x.Cols);
    }

    public void Add(CpuTensor a, CpuTensor b, CpuTensor dst) => Run(Op.Add, a, b, dst, a.Rows, a.Cols);

    public void SiluMul(CpuTensor gate, CpuTensor up, CpuTensor dst) => Run(Op.SiluMul, gate, up, dst, gate.Rows, gate.Cols);

    public void GeluTanhMul(CpuTensor gate, CpuTensor up, CpuTensor dst) => Run(Op.GeluTanhMul, gate, up, dst, gate.Rows, gate.Cols);

    public void Scale(CpuTensor x, float factor)
    {
        _factor = factor;
        Run(Op.Scale, x, null, x, x.Rows, x.Cols);
    }

    public void SoftCap(CpuTensor x, float cap)
    {
        _factor = cap;
        Run(Op.SoftCap, x, null, x, x.Rows, x.Cols);
    }

    public void Relu(CpuTensor x) => Run(Op.Relu, x, null, x, x.Rows, x.Cols);

    public void Rope(CpuTensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope)
    {
        if (rope.RotaryDim > headDim)
            throw new ArgumentException($"rotary dim {rope.RotaryDim} exceeds head dim {headDim}");
        (_headDim, _rope) = (headDim, rope);
        // A job cannot hold spans; copy into arrays reused across calls instead of allocating per op.
        if (_positions.Length < positions.Length)
            _positions = new int[Math.Max(positions.Length, 2 * _positions.Length)];
        positions.CopyTo(_positions);
        Run(Op.Rope, x, null, x, x.Rows, x.Cols);
    }

    private void Run(Op op, CpuTensor a, CpuTensor? b, CpuTensor dst, int rows, int cols)
    {
        if (rows == 0)
            return;   // e.g. the logits of a step whose chunks all end mid-prompt
        (_op, _rows, _cols) = (op, rows, cols);
        _a = (float*)a.Pointer;
        _b = b == null ? null : (float*)b.Pointer;
        _dst = (float*)dst.Pointer;
        _rowsPerChunk = RowsPerChunk(rows, cols);
        try
        {
            pool.Run(this, (rows + _rowsPerChunk - 1) / _rowsPerChunk);
        }
        finally
        {
            _a = _b = _dst = null;
        }
    }

    public override void Execute(int chunk, int worker)
    {
        int r0 = chunk * _rowsPerChunk, r1 = Math.Min(_rows, r0 + _rowsPerChunk), cols = _cols;
        Span<float> cos = _op == Op.Rope ? stackalloc float[_headDim / 2] : default;
        Span<float> sin = _op == Op.Rope ? stackalloc float[_headDim / 2] : default;
        for (int r = r0; r < r1; r++)
        {
            long off = (long)r * cols;
            var a = new Span<float>(_a + off, cols);
            var d = new Span<float>(_dst + off, cols);
            switch (_op)
            {
                case Op.RmsNorm: Norm.RmsNorm(a, _w, _eps, d); break;
                case Op.LayerNorm: Norm.LayerNorm(a, _w, _bias, _eps, d); break;
                case Op.Add: Activation.Add(a, new ReadOnlySpan<float>(_b + off, cols), d); break;
                case Op.SiluMul: Activation.SiluMul(a, new ReadOnlySpan<float>(_b + off, cols), d); break;
                case Op.GeluTanhMul: Activation.GeluTanhMul(a, new ReadOnlySpan<float>(_b + off, cols), d); break;
                case Op.Scale: Activation.Scale(d, _factor); break;
                case Op.SoftCap: Activation.SoftCap(d, _factor); break;
                case Op.Relu: Activation.Relu(d); break;
                case Op.Rope: Cpu.Rope.Apply(d, _headDim, _positions[r], _rope!, cos, sin); break;
            }
        }
    }
}
