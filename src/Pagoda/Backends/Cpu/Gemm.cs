using System.Runtime.InteropServices;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// dst = x · Wᵀ (· scale) + b with W stored [out, in] as F32/BF16/F16/I8, run on the worker pool over
/// chunks of output columns. Few rows (decode): GEMV, widening weights in registers straight from the
/// mapping, so each weight byte is read once per step. Many rows (prefill, batched decode): GEMM that
/// widens a panel of weight rows once into a per-worker cache-sized buffer and reuses it for 4×3 tiles
/// of every input row. Both paths give bit-identical elements (see <see cref="DotKernels"/>).
/// </summary>
internal sealed unsafe class Gemm : PoolJob
{
    /// <summary>Rows from which the panel (GEMM) path pays off.</summary>
    public const int GemmMinRows = 4;

    private const int GemvColumnsPerChunk = 64;
    private const int PanelBytes = 96 * 1024;

    private readonly WorkerPool _pool;
    private readonly float*[] _panels;
    private readonly long[] _panelFloats;

    private float* _x, _dst, _scales;
    private float[]? _bias;
    private byte* _w;
    private long _wRowBytes;
    private DType _dtype;
    private int _n, _k, _out, _colsPerChunk;
    private bool _gemm;

    public Gemm(WorkerPool pool)
    {
        _pool = pool;
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
        _w = w.Pointer;
        _wRowBytes = w.RowBytes;
        _dtype = w.DType;
        _scales = w.Scales;
        _bias = bias?.AsFloatVector();
        (_n, _k, _out) = (n, inDim, outDim);
        _gemm = n >= GemmMinRows;
        // A panel of widened weight rows should stay in L2 while every input row streams past it.
        _colsPerChunk = _gemm ? Math.Clamp(PanelBytes / (inDim * sizeof(float)) / 3 * 3, 3, 48) : GemvColumnsPerChunk;
        try
        {
            _pool.Run(this, (outDim + _colsPerChunk - 1) / _colsPerChunk);
        }
        finally
        {
            _x = _dst = null;
            _w = null;
            _bias = null;
        }
    }

    public override void Execute(int chunk, int worker)
    {
        int c0 = chunk * _colsPerChunk, c1 = Math.Min(_out, c0 + _colsPerChunk);
        if (_gemm)
        {
            switch (_dtype)
            {
                case DType.F32: GemmChunk<F32Weights>(c0, c1, worker); break;
                case DType.BF16: GemmChunk<Bf16Weights>(c0, c1, worker); break;
                case DType.F16: GemmChunk<F16Weights>(c0, c1, worker); break;
                default: GemmChunk<I8Weights>(c0, c1, worker); break;
            }
        }
        else
        {
            switch (_dtype)
            {
                case DType.F32: GemvChunk<F32Weights>(c0, c1); break;
                case DType.BF16: GemvChunk<Bf16Weights>(c0, c1); break;
                case DType.F16: GemvChunk<F16Weights>(c0, c1); break;
                default: GemvChunk<I8Weights>(c0, c1); break;
            }
        }
    }

    private void GemvChunk<TW>(int c0, int c1) where TW : IWeightFormat
    {
        float* sums = stackalloc float[4];
        int j = c0;
        for (; j + 4 <= c1; j += 4)
        {
            byte* w = _w + j * _wRowBytes;
            for (int r = 0; r < _n; r++)
            {
                DotKernels.Dot1x4<TW>(_x + (long)r * _k, w, _wRowBytes, _k, sums);
                float* d = _dst + (long)r * _out + j;
                for (int c = 0; c < 4; c++)
                    d[c] = Finish(j + c, sums[c]);
            }
        }
        for (; j < c1; j++)
        {
            for (int r = 0; r < _n; r++)
                _dst[(long)r * _out + j] = Finish(j, DotKernels.Dot<TW>(_x + (long)r * _k, _w + j * _wRowBytes, _k));
        }
    }

    private void GemmChunk<TW>(int c0, int c1, int worker) where TW : IWeightFormat
    {
        int cols = c1 - c0, k = _k;
        float* panel;
        if (typeof(TW) == typeof(F32Weights))
        {
            panel = (float*)(_w + c0 * _wRowBytes);
        }
        else
        {
            panel = Panel(worker, (long)cols * k);
            DotKernels.WidenRows<TW>(_w, _wRowBytes, c0, cols, k, panel);
        }
        float* sums = stackalloc float[12];
        int r = 0;
        for (; r + 4 <= _n; r += 4)
        {
            float* x = _x + (long)r * k;
            int c = 0;
            for (; c + 3 <= cols; c += 3)
            {
                DotKernels.Dot4x3(x, k, panel + (long)c * k, k, k, sums);
                for (int i = 0; i < 4; i++)
                {
                    float* d = _dst + (long)(r + i) * _out + c0 + c;
                    d[0] = Finish(c0 + c, sums[i * 3]);
                    d[1] = Finish(c0 + c + 1, sums[i * 3 + 1]);
                    d[2] = Finish(c0 + c + 2, sums[i * 3 + 2]);
                }
            }
            for (; c < cols; c++)
            {
                for (int i = 0; i < 4; i++)
                    _dst[(long)(r + i) * _out + c0 + c] = Finish(c0 + c, DotKernels.Dot<F32Weights>(x + (long)i * k, (byte*)(panel + (long)c * k), k));
            }
        }
        for (; r < _n; r++)
        {
            for (int c = 0; c < cols; c++)
                _dst[(long)r * _out + c0 + c] = Finish(c0 + c, DotKernels.Dot<F32Weights>(_x + (long)r * k, (byte*)(panel + (long)c * k), k));
        }
    }

    private float Finish(int column, float dot)
    {
        if (_scales != null)
            dot *= _scales[column];
        return _bias == null ? dot : dot + _bias[column];
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
