using System.Runtime.InteropServices;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// dst = x · Wᵀ (· scale) + b with W stored [out, in] as F32/BF16/F16/I8, run on the worker pool over
/// chunks of output columns. Few rows (decode): GEMV, widening weights in registers straight from the
/// mapping, so each weight byte is read once per step. Many rows (prefill, batched decode): GEMM that
/// widens a panel of weight rows once into a per-worker cache-sized buffer and reuses it for 4×3 tiles
/// of every input row. With <see cref="BatchInvariant"/> the GEMV is the 4-row kernel in the GEMM's order,
/// so both paths give bit-identical elements (see <see cref="DotKernels"/>); by default a single input row
/// over 16/32-bit weights takes the faster row-streaming kernel of <see cref="RowDotKernels"/>, whose order
/// is its own.
/// </summary>
internal sealed unsafe class Gemm : PoolJob
{
    /// <summary>Rows from which the panel (GEMM) path pays off.</summary>
    public const int GemmMinRows = 4;

    /// <summary>
    /// Rows up to which the default (not batch-invariant) mode runs the row GEMV of
    /// <see cref="RowDotKernels"/> for 16- and 32-bit weights. Measured: with 2 or 3 input rows the 4-row
    /// kernel is faster again (it shares each input load among 4 weight rows, and the weights come from L1
    /// after the first input row anyway), and int8 is faster with the 4-row kernel even for one row.
    /// </summary>
    public const int RowGemvMaxRows = 1;

    /// <summary>
    /// Rows up to which the default mode on AVX-512 runs the few-rows GEMV of <see cref="FewRowsKernels"/> instead of the
    /// panel GEMM (on AVX2, below <see cref="GemmMinRows"/> only: not measured there beyond). Measured on fortune-chat's
    /// decode (2-core Zen 5): a step of 4 rows 0.77 ms against 1.37 ms on the panel, 8 rows 1.83 against 2.11, 16 rows
    /// 3.32 against 3.06.
    /// </summary>
    public const int FewRowsMaxRows = 8;

    private const int GemvColumnsPerChunk = 64;
    private const int PanelBytes = 384 * 1024;

    private readonly WorkerPool _pool;
    private readonly RegionClaims _claims;
    private readonly float*[] _panels;
    private readonly long[] _panelFloats;

    // One part of the weight: the whole tensor, or one of the tensors a stacked weight is made of.
    private struct Part
    {
        public byte* W;
        public float* Scales;
        public int Rows, Col0, FirstChunk;
        public bool RowQuads;
    }

    private Part[] _parts = new Part[3];
    private int _numParts;
    private float* _x, _dst;
    private float[]? _bias;
    private long _wRowBytes;
    private DType _dtype;
    private int _n, _k, _out, _colsPerChunk;
    private bool _gemm, _rowGemv, _fewRows;

    /// <summary>
    /// Every row's result independent of the batch (see <see cref="DotKernels"/>): a single input row takes
    /// the 4-row GEMV in the GEMM's order. Off (the default), it takes the faster row GEMV (16/32-bit weights).
    /// </summary>
    public bool BatchInvariant { get; set; }

    /// <summary>16-lane kernels (AVX-512) instead of 8-lane ones.</summary>
    public bool Wide { get; }

    public Gemm(WorkerPool pool, bool wide)
    {
        _pool = pool;
        Wide = wide;
        _claims = new RegionClaims(pool.Size);
        _panels = new float*[pool.Size];
        _panelFloats = new long[pool.Size];
    }

    public void Linear(CpuTensor x, CpuTensor w, CpuTensor? bias, CpuTensor dst)
    {
        int n = x.Rows, inDim = x.Cols, outDim = w.Rows;
        if (w.Cols != inDim || dst.Rows != n || dst.Cols != outDim || (bias != null && bias.NumElements != outDim))
            throw new ArgumentException($"Linear shapes: x [{n}, {inDim}], w [{outDim}, {w.Cols}], dst [{dst.Rows}, {dst.Cols}]");
        _x = (float*)x.Pointer;
        _dst = (float*)dst.Pointer;
        _wRowBytes = w.RowBytes;
        _dtype = w.DType;
        _bias = bias?.AsFloatVector();
        (_n, _k, _out) = (n, inDim, outDim);
        _fewRows = !BatchInvariant && n >= 2 && n <= (Wide ? FewRowsMaxRows : GemmMinRows - 1);
        _gemm = !_fewRows && n >= GemmMinRows;
        _rowGemv = !BatchInvariant && n <= RowGemvMaxRows && w.DType != DType.I8;
        // A panel of widened weight rows should stay in L2 while every input row streams past it, and be wide:
        // each chunk streams all input rows again (from L3 in a 512-token prefill), so for k = 4864 a 96 KB
        // panel (3 columns) made the down projection take as long as gate/up, which has twice its FLOPs;
        // 384 KB (18 columns there, 48 at k = 896) cut a 512-token int8 prefill by ~20%.
        _colsPerChunk = _gemm ? Math.Clamp(PanelBytes / (inDim * sizeof(float)) / 3 * 3, 3, 48) : GemvColumnsPerChunk;
        // A stacked weight (q/k/v, gate/up) runs as one dispatch over its parts' chunks, each part
        // chunked on its own so a chunk never straddles two tensors.
        var parts = w.Parts ?? [w];
        if (_parts.Length < parts.Length)
            _parts = new Part[parts.Length];
        int chunks = 0, col = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            _parts[i] = new Part
            {
                W = parts[i].Pointer, Scales = parts[i].Scales, Rows = parts[i].Rows, Col0 = col, FirstChunk = chunks,
                RowQuads = parts[i].InRowQuads,
            };
            col += parts[i].Rows;
            chunks += (parts[i].Rows + _colsPerChunk - 1) / _colsPerChunk;
        }
        _numParts = parts.Length;
        _claims.Reset(chunks);
        try
        {
            _pool.Run(this, chunks);
        }
        finally
        {
            _x = _dst = null;
            _bias = null;
            Array.Clear(_parts);
        }
    }

    public override void Execute(int ticket, int worker)
    {
        int chunk = _claims.Claim(worker);
        int p = _numParts - 1;
        while (_parts[p].FirstChunk > chunk)
            p--;
        ref readonly Part part = ref _parts[p];
        int c0 = (chunk - part.FirstChunk) * _colsPerChunk, c1 = Math.Min(part.Rows, c0 + _colsPerChunk);
        if (_gemm)
        {
            switch (_dtype)
            {
                case DType.F32: GemmChunk<F32Weights>(part, c0, c1, worker); break;
                case DType.BF16: GemmChunk<Bf16Weights>(part, c0, c1, worker); break;
                case DType.F16: GemmChunk<F16Weights>(part, c0, c1, worker); break;
                default: GemmChunk<I8Weights>(part, c0, c1, worker); break;
            }
        }
        else if (_fewRows && !part.RowQuads)
        {
            switch (_dtype)
            {
                case DType.F32: FewRowsChunk<F32Weights>(part, c0, c1); break;
                case DType.BF16: FewRowsChunk<Bf16Weights>(part, c0, c1); break;
                case DType.F16: FewRowsChunk<F16Weights>(part, c0, c1); break;
                default: FewRowsChunk<I8Weights>(part, c0, c1); break;
            }
        }
        else if (_rowGemv)
        {
            switch (_dtype)
            {
                case DType.F32: RowGemvChunk<F32Weights>(part, c0, c1); break;
                case DType.BF16: RowGemvChunk<Bf16Weights>(part, c0, c1); break;
                default: RowGemvChunk<F16Weights>(part, c0, c1); break;
            }
        }
        else
        {
            switch (_dtype)
            {
                case DType.F32: GemvChunk<F32Weights>(part, c0, c1); break;
                case DType.BF16: GemvChunk<Bf16Weights>(part, c0, c1); break;
                case DType.F16: GemvChunk<F16Weights>(part, c0, c1); break;
                default: GemvChunk<I8Weights>(part, c0, c1); break;
            }
        }
    }

    // Columns [c0, c1) of one part; its column j is output column part.Col0 + j.
    private void GemvChunk<TW>(in Part part, int c0, int c1) where TW : IWeightFormat
    {
        float* sums = stackalloc float[4];
        int j = c0;
        for (; j + 4 <= c1; j += 4)
        {
            // A group of four rows starts at row j's row-major offset in either layout (j % 4 == 0 there).
            byte* w = part.W + j * _wRowBytes;
            for (int r = 0; r < _n; r++)
            {
                if (part.RowQuads)
                    RowQuads.Dot1x4(_x + (long)r * _k, w, _k, sums, Wide);
                else
                    DotKernels.Dot1x4<TW>(_x + (long)r * _k, w, _wRowBytes, _k, sums, Wide);
                float* d = _dst + (long)r * _out + part.Col0 + j;
                for (int c = 0; c < 4; c++)
                    d[c] = Finish(part, j + c, sums[c]);
            }
        }
        // Never a row-quads part: its rows, and so its chunks' ends, are multiples of 4.
        for (; j < c1; j++)
        {
            for (int r = 0; r < _n; r++)
                _dst[(long)r * _out + part.Col0 + j] = Finish(part, j, DotKernels.Dot<TW>(_x + (long)r * _k, part.W + j * _wRowBytes, _k, Wide));
        }
    }

    // Columns [c0, c1) of one part for a few input rows: each group of four weight rows widened once per group of input rows.
    private void FewRowsChunk<TW>(in Part part, int c0, int c1) where TW : IWeightFormat
    {
        float* sums = stackalloc float[16];
        int per = FewRowsKernels.RowsPerCall(Wide);
        int j = c0;
        for (; j + 4 <= c1; j += 4)
        {
            byte* w = part.W + j * _wRowBytes;
            int r = 0;
            for (; r + per <= _n; r += per)
            {
                FewRowsKernels.DotRowsX4<TW>(_x + (long)r * _k, _k, w, _wRowBytes, _k, sums, Wide);
                for (int i = 0; i < per; i++)
                {
                    float* d = _dst + (long)(r + i) * _out + part.Col0 + j;
                    for (int c = 0; c < 4; c++)
                        d[c] = Finish(part, j + c, sums[i * 4 + c]);
                }
            }
            for (; r < _n; r++)
            {
                DotKernels.Dot1x4<TW>(_x + (long)r * _k, w, _wRowBytes, _k, sums, Wide);
                float* d = _dst + (long)r * _out + part.Col0 + j;
                for (int c = 0; c < 4; c++)
                    d[c] = Finish(part, j + c, sums[c]);
            }
        }
        for (; j < c1; j++)
        {
            for (int r = 0; r < _n; r++)
                _dst[(long)r * _out + part.Col0 + j] = Finish(part, j, DotKernels.Dot<TW>(_x + (long)r * _k, part.W + j * _wRowBytes, _k, Wide));
        }
    }

    // Columns [c0, c1) of one part, each weight row read linearly once per input row.
    private void RowGemvChunk<TW>(in Part part, int c0, int c1) where TW : IWeightFormat
    {
        for (int j = c0; j < c1; j++)
        {
            byte* w = part.W + j * _wRowBytes;
            for (int r = 0; r < _n; r++)
                _dst[(long)r * _out + part.Col0 + j] = Finish(part, j, RowDotKernels.DotRow<TW>(_x + (long)r * _k, w, _k));
        }
    }

    private void GemmChunk<TW>(in Part part, int c0, int c1, int worker) where TW : IWeightFormat
    {
        int cols = c1 - c0, k = _k;
        float* panel;
        if (typeof(TW) == typeof(F32Weights))
        {
            panel = (float*)(part.W + c0 * _wRowBytes);
        }
        else if (part.RowQuads)
        {
            panel = Panel(worker, (long)cols * k);
            RowQuads.WidenRows(part.W, c0, cols, k, panel);
        }
        else
        {
            panel = Panel(worker, (long)cols * k);
            DotKernels.WidenRows<TW>(part.W, _wRowBytes, c0, cols, k, panel);
        }
        float* sums = stackalloc float[24];
        int r = 0;
        // Tiles of 8 rows where 32 vector registers hold them (AVX-512: half the panel loads per FMA), else 4.
        for (int tile; r + 4 <= _n; r += tile)
        {
            tile = Wide && r + 8 <= _n ? 8 : 4;
            float* x = _x + (long)r * k;
            int c = 0;
            for (; c + 3 <= cols; c += 3)
            {
                if (tile == 8)
                    DotKernels.Dot8x3_512(x, k, panel + (long)c * k, k, k, sums);
                else
                    DotKernels.Dot4x3(x, k, panel + (long)c * k, k, k, sums, Wide);
                for (int i = 0; i < tile; i++)
                {
                    float* d = _dst + (long)(r + i) * _out + part.Col0 + c0 + c;
                    d[0] = Finish(part, c0 + c, sums[i * 3]);
                    d[1] = Finish(part, c0 + c + 1, sums[i * 3 + 1]);
                    d[2] = Finish(part, c0 + c + 2, sums[i * 3 + 2]);
                }
            }
            for (; c < cols; c++)
            {
                for (int i = 0; i < tile; i++)
                    _dst[(long)(r + i) * _out + part.Col0 + c0 + c] = Finish(part, c0 + c, DotKernels.Dot<F32Weights>(x + (long)i * k, (byte*)(panel + (long)c * k), k, Wide));
            }
        }
        for (; r < _n; r++)
        {
            for (int c = 0; c < cols; c++)
                _dst[(long)r * _out + part.Col0 + c0 + c] = Finish(part, c0 + c, DotKernels.Dot<F32Weights>(_x + (long)r * k, (byte*)(panel + (long)c * k), k, Wide));
        }
    }

    // Column j of a part: its int8 scale is the part's, its bias the stacked output column's.
    private float Finish(in Part part, int j, float dot)
    {
        if (part.Scales != null)
            dot *= part.Scales[j];
        return _bias == null ? dot : dot + _bias[part.Col0 + j];
    }

    private float* Panel(int worker, long floats)
    {
        if (_panelFloats[worker] < floats)
        {
            if (_panels[worker] != null)
                NativeMemory.AlignedFree(_panels[worker]);
            _panels[worker] = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
            _panelFloats[worker] = floats;
        }
        return _panels[worker];
    }

    ~Gemm()
    {
        foreach (var p in _panels)
        {
            if (p != null)
                NativeMemory.AlignedFree(p);
        }
    }
}
