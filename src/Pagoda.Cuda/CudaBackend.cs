using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// The CUDA backend: weights and activations live on the GPU in one element type (float32, bfloat16 or
/// float16; arithmetic is float32 inside every kernel), kernels come from NVRTC, 16-bit GEMMs from Pagoda's
/// fixed-order kernels (float32 ones from cuBLAS), and everything runs in order on one stream. Host inputs
/// (ids, positions, slots, block tables) are staged through pinned memory; see <see cref="CudaBackend.BeginStep"/> for how CUDA graphs replay a forward.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend
{
    private readonly CudaDevice _device;
    private readonly bool _ownsDevice;
    private readonly StreamHandle _stream;
    private readonly CublasHandle _blas;
    private readonly DeviceMemory _workspace;
    private readonly Kernels _k;
    private readonly DevicePool _pool = new();
    private readonly List<Tensor> _owned = [];
    private readonly Dictionary<float[], DeviceMemory> _sinks = new(ReferenceEqualityComparer.Instance);
    private readonly int _elemSize;
    private readonly DeviceMemory _attentionCounters; // per (tile, kv head): splits finished; the last block resets it
    private readonly long[] _attentionSmem; // per attention variant: the dynamic shared memory opted into so far
    private readonly long[] _gemmSmem; // the same per fixed-order GEMM variant

    /// <summary>
    /// Opens the GPU and compiles (or loads cached) kernels for <paramref name="dtype"/>; <paramref name="options"/>
    /// give batch invariance and the kernel cache folder.
    /// </summary>
    public CudaBackend(DType dtype, CudaDevice? device = null, int maxModelLen = 4096, BackendOptions? options = null, int deviceOrdinal = 0)
    {
        options ??= new BackendOptions();
        BatchInvariant = options.BatchInvariant;
        _ownsDevice = device == null;
        _device = device ?? new CudaDevice(deviceOrdinal);
        _device.MakeCurrent();
        FreeAtStart = _device.MemoryInfo().Free;
        DType = dtype;
        _elemSize = DTypes.SizeOf(dtype);
        MaxModelLen = maxModelLen;
        _stream = new StreamHandle();
        _blas = new CublasHandle();
        Cublas.Check(Cublas.cublasSetStream(_blas.Handle, _stream.Stream), "cublasSetStream_v2");
        _workspace = new DeviceMemory(32L << 20);
        Cublas.Check(Cublas.cublasSetWorkspace_v2(_blas.Handle, _workspace.Ptr, 32 << 20), "cublasSetWorkspace_v2");
        if (dtype == DType.F32)
            Cublas.Check(Cublas.cublasSetMathMode(_blas.Handle, Cublas.PedanticMath), "cublasSetMathMode");
        _k = new Kernels(_device, dtype, options.KernelCacheDir);
        _attentionSmem = new long[_k.Attention.Length];
        _gemmSmem = new long[_k.Gemm.Length];
        _staging = new PinnedMemory(StagingBytes);
        _attentionCounters = new DeviceMemory(AttentionCounterSlots * 4L);
        Driver.Check(Driver.cuMemsetD8Async(_attentionCounters.Ptr, 0, (nuint)_attentionCounters.Bytes, S), "cuMemsetD8Async");
        _gemmCounters = new DeviceMemory(GemmCounterSlots * 4L);
        Driver.Check(Driver.cuMemsetD8Async(_gemmCounters.Ptr, 0, (nuint)_gemmCounters.Bytes, S), "cuMemsetD8Async");
    }

    /// <summary>The device's free memory when the backend began: what this engine has taken since is the difference.</summary>
    public long FreeAtStart { get; }

    /// <summary>Held while the engine sizes its KV cache (<see cref="CudaProvider"/>); disposed with the backend at the latest.</summary>
    internal CudaStartupLock? StartupLock { get; init; }

    /// <inheritdoc />
    public string Name => "cuda";

    /// <summary>The GPU.</summary>
    public CudaDevice Device => _device;

    /// <summary>Element type of weights, activations and the KV pool.</summary>
    public DType DType { get; }

    /// <summary>Longest context: fixes the split-K length of attention (and so its reduction order).</summary>
    public int MaxModelLen { get; set; }

    /// <summary>How the kernel module was obtained (compiled or loaded from the disk cache), for start-up logs.</summary>
    public string KernelInfo => _k.CompileInfo;

    /// <summary>Bytes the activation pool holds.</summary>
    public long PoolBytes => _pool.ReservedBytes;

    private nint S => _stream.Stream;

    /// <inheritdoc />
    public Tensor LoadWeight(HostWeight weight)
    {
        _device.MakeCurrent();
        int[] shape = weight.Shape;
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var t = new CudaTensor(DType, shape, new DeviceMemory(n * _elemSize), null);
        _owned.Add(t);
        byte* src = (byte*)weight.Data;
        if (weight.DType == DType)
        {
            Driver.Check(Driver.cuMemcpyHtoDAsync(t.Ptr, src, (nuint)(n * _elemSize), S), "cuMemcpyHtoDAsync_v2");
        }
        else
        {
            using var raw = new DeviceMemory(n * DTypes.SizeOf(weight.DType));
            Driver.Check(Driver.cuMemcpyHtoDAsync(raw.Ptr, src, (nuint)raw.Bytes, S), "cuMemcpyHtoDAsync_v2");
            var (fn, fname) = weight.DType switch
            {
                DType.F32 => (_k.ConvertFromF32, "convert_from_f32"),
                DType.BF16 => (_k.ConvertFromBf16, "convert_from_bf16"),
                _ => (_k.ConvertFromF16, "convert_from_f16"),
            };
            _k.Launch(fn, fname, S, Grid(n), 1, 1, 256, raw.Ptr, t.Ptr, n);
            Sync(); // raw is freed on return
        }
        return t;
    }

    /// <summary>A tensor of <see cref="DType"/> holding <paramref name="data"/> (tests and tools).</summary>
    public Tensor Upload(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = (CudaTensor)Empty(shape);
        using var tmp = new DeviceMemory((long)data.Length * 4);
        fixed (float* p = data)
            Driver.Check(Driver.cuMemcpyHtoDAsync(tmp.Ptr, p, (nuint)(data.Length * 4), S), "cuMemcpyHtoDAsync_v2");
        _k.Launch(_k.FromF32, "from_f32", S, Grid(data.Length), 1, 1, 256, tmp.Ptr, t.Ptr, (long)data.Length);
        Sync();
        return t;
    }

    /// <inheritdoc />
    public Tensor Empty(params int[] shape)
    {
        _device.MakeCurrent();
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var t = new CudaTensor(DType, shape, _pool.Rent(n * _elemSize), _pool);
        if (_mode != StepMode.Replay)
            Driver.Check(Driver.cuMemsetD8Async(t.Ptr, 0, (nuint)(n * _elemSize), S), "cuMemsetD8Async");
        return t;
    }

    /// <inheritdoc />
    public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth)
    {
        _device.MakeCurrent();
        // One extra block past the pool's end is scratch: padded rows of captured decode graphs write there.
        int slots = checked((numBlocks + 1) * blockSize);
        var keys = new Tensor[numLayers];
        var values = new Tensor[numLayers];
        for (int l = 0; l < numLayers; l++)
        {
            keys[l] = new CudaTensor(DType, [slots, kvWidth], new DeviceMemory((long)slots * kvWidth * _elemSize), null);
            values[l] = new CudaTensor(DType, [slots, kvWidth], new DeviceMemory((long)slots * kvWidth * _elemSize), null);
            // Zeroed once: a sliding-window model's null block (block 0 in the tables of positions the window has passed)
            // is never written, and attention multiplies its masked keys' zero weights by these values (0 · NaN is NaN).
            foreach (var t in new[] { keys[l], values[l] })
                Driver.Check(Driver.cuMemsetD8Async(((CudaTensor)t).Ptr, 0, (nuint)((long)slots * kvWidth * _elemSize), S), "cuMemsetD8Async");
        }
        Sync();
        ScratchBlock = numBlocks;
        return new PagedKvCache(keys, values, numBlocks, blockSize);
    }

    /// <summary>Bytes of one KV block over all layers (K and V).</summary>
    public long KvBlockBytes(int numLayers, int blockSize, int kvWidth) => 2L * numLayers * blockSize * kvWidth * _elemSize;

    /// <summary>The block id reserved as scratch by <see cref="AllocateKvCache"/>.</summary>
    public int ScratchBlock { get; private set; }

    /// <inheritdoc />
    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst)
    {
        ulong d = UploadInts("ids", ids);
        if (Skip) return;
        _k.Launch(_k.Embedding, "embedding", S, (uint)ids.Length, 1, 1, RowThreads(dst.Cols), P(table), d, P(dst), dst.Cols);
    }

    /// <inheritdoc />
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst)
    {
        if (Skip) return;
        int m = weight.Rows, n = x.Rows, k = weight.Cols;
        if (UsesFixedGemm(n, k))
        {
            FixedGemm(x, weight, bias, dst, n, m, k);
            return;
        }
        float one = 1f, zero = 0f;
        int type = DType switch { DType.BF16 => Cublas.R16BF, DType.F16 => Cublas.R16F, _ => Cublas.R32F };
        int compute = DType == DType.F32 ? Cublas.Compute32FPedantic : Cublas.Compute32F;
        Cublas.Check(Cublas.cublasGemmEx(_blas.Handle, Cublas.OpT, Cublas.OpN, m, n, k, &one, P(weight), type, k, P(x), type, k,
            &zero, P(dst), type, m, compute, Cublas.GemmDefault), "cublasGemmEx");
        if (bias != null)
            _k.Launch(_k.BiasAdd, "bias_add", S, Grid(dst.NumElements), 1, 1, 256, P(dst), P(bias), dst.NumElements, dst.Cols);
    }

    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst)
    {
        if (Skip) return;
        int cols = weight.Cols;
        _k.Launch(_k.RmsNorm, "rms_norm", S, (uint)(x.NumElements / cols), 1, 1, RowThreads(cols), P(x), P(weight), P(dst), cols, eps);
    }

    /// <summary>residual += delta, then dst = RMSNorm(residual) · weight, in one pass.</summary>
    public void AddRmsNorm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor dst)
    {
        if (Skip) return;
        int cols = weight.Cols;
        _k.Launch(_k.AddRmsNorm, "add_rms_norm", S, (uint)residual.Rows, 1, 1, RowThreads(cols), P(residual), P(delta), P(weight), P(dst), cols, eps);
    }

    /// <inheritdoc />
    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst)
    {
        if (Skip) return;
        _k.Launch(_k.LayerNorm, "layer_norm", S, (uint)x.Rows, 1, 1, RowThreads(x.Cols), P(x), P(weight), P(bias), P(dst), x.Cols, eps);
    }

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor dst)
    {
        if (Skip) return;
        _k.Launch(_k.Add, "add", S, Grid(dst.NumElements), 1, 1, 256, P(a), P(b), P(dst), dst.NumElements);
    }

    /// <inheritdoc />
    public void SiluMul(Tensor gate, Tensor up, Tensor dst)
    {
        if (Skip) return;
        _k.Launch(_k.SiluMul, "silu_mul", S, Grid(dst.NumElements), 1, 1, 256, P(gate), P(up), P(dst), dst.NumElements);
    }

    /// <inheritdoc />
    public void GeluTanhMul(Tensor gate, Tensor up, Tensor dst)
    {
        if (Skip) return;
        _k.Launch(_k.GeluTanhMul, "gelu_tanh_mul", S, Grid(dst.NumElements), 1, 1, 256, P(gate), P(up), P(dst), dst.NumElements);
    }

    /// <inheritdoc />
    public void Scale(Tensor x, float factor)
    {
        if (Skip) return;
        _k.Launch(_k.Scale, "scale", S, Grid(x.NumElements), 1, 1, 256, P(x), factor, x.NumElements);
    }

    /// <inheritdoc />
    public void SoftCap(Tensor x, float cap)
    {
        if (Skip) return;
        _k.Launch(_k.SoftCap, "soft_cap", S, Grid(x.NumElements), 1, 1, 256, P(x), cap, x.NumElements);
    }

    /// <inheritdoc />
    public void Relu(Tensor x)
    {
        if (Skip) return;
        _k.Launch(_k.Relu, "relu", S, Grid(x.NumElements), 1, 1, 256, P(x), x.NumElements);
    }

    /// <inheritdoc />
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope)
    {
        CheckRotary(rope, headDim);
        ulong pos = UploadInts("positions", positions);
        ulong freq = UploadFloats("inv_freq", rope.InvFreq);
        if (Skip) return;
        _k.Launch(_k.Rope, "rope", S, (uint)x.Rows, 1, 1, RowThreads(x.Cols / 2), P(x), pos, freq, x.Cols, headDim,
            rope.InvFreq.Length, rope.AttentionFactor);
    }

    private static void CheckRotary(RotaryParams rope, int headDim)
    {
        if (rope.RotaryDim > headDim || headDim % 2 != 0)
            throw new ArgumentException($"rotary dim {rope.RotaryDim} does not fit head dim {headDim}");
    }

    /// <inheritdoc />
    public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping)
    {
        ulong slots = UploadInts("slots", slotMapping);
        if (Skip) return;
        _k.Launch(_k.RopeStoreKv, "rope_store_kv", S, (uint)k.Rows, 1, 1, RowThreads(k.Cols), P(k), P(v),
            P(cache.Keys[layer]), P(cache.Values[layer]), slots, 0UL, 0UL, k.Cols, 0, 0);
    }

    /// <inheritdoc />
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst)
    {
        ulong r = UploadInts("rows", rows);
        if (Skip) return;
        _k.Launch(_k.Embedding, "embedding", S, (uint)rows.Length, 1, 1, RowThreads(x.Cols), P(x), r, P(dst), x.Cols);
    }

    /// <summary>Brackets work for a profiler started with profiling off (ncu --profile-from-start off).</summary>
    public void ProfilerRange(bool start)
    {
        Sync();
        Driver.Check(start ? Driver.cuProfilerStart() : Driver.cuProfilerStop(), start ? "cuProfilerStart" : "cuProfilerStop");
    }

    /// <summary>Waits for all queued work.</summary>
    public void Sync() => Driver.Check(Driver.cuStreamSynchronize(S), "cuStreamSynchronize");

    private static ulong P(Tensor t) => ((CudaTensor)t).Ptr;

    private static uint Grid(long n) => (uint)Math.Clamp((n + 255) / 256, 1, 8192);

    private static uint RowThreads(int cols) => (uint)Math.Clamp((cols + 31) / 32 * 32, 32, 512);

    /// <inheritdoc />
    public void Dispose()
    {
        StartupLock?.Dispose();
        foreach (var g in _graphs)
            g.Dispose();
        foreach (var t in _owned)
            t.Dispose();
        foreach (var m in _sinks.Values)
            m.Dispose();
        _uploads.Clear();
        _pool.Dispose();
        _k.Dispose();
        _samplingData?.Dispose();
        _samplingCopy?.Dispose();
        _samplingDesc?.Dispose();
        _workspace.Dispose();
        _attentionCounters.Dispose();
        _gemmCounters.Dispose();
        _blas.Dispose();
        _kvCopyStream?.Dispose();
        _stream.Dispose();
        _staging.Dispose();
        _hostOut?.Dispose();
        if (_ownsDevice)
            _device.Dispose();
    }
}
