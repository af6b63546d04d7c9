using System.Runtime.InteropServices;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// A tensor in host memory: either an owned, 64-byte aligned native buffer (activations, KV) or a
/// borrowed pointer into a memory-mapped weight file.
/// </summary>
internal sealed unsafe class CpuTensor : Tensor
{
    private byte* _data;
    private readonly bool _owned;
    private BufferCache? _cache;

    private CpuTensor(DType dtype, int[] shape, byte* data, bool owned) : base(dtype, shape)
    {
        _data = data;
        _owned = owned;
    }

    /// <summary>
    /// An owned float32 buffer. <paramref name="zero"/> false leaves large buffers (the KV pool) untouched,
    /// so the OS commits their pages only as tokens are written.
    /// </summary>
    public static CpuTensor Allocate(int[] shape, bool zero = true, BufferCache? cache = null)
    {
        var t = new CpuTensor(DType.F32, shape, null, owned: true);
        nuint bytes = (nuint)Math.Max(t.NumElements * sizeof(float), 64);
        t._cache = cache;
        t._data = cache != null ? cache.Rent(bytes) : null;
        if (t._data == null)
            t._data = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        if (zero)
            NativeMemory.Clear(t._data, bytes);
        return t;
    }

    public static CpuTensor Borrow(DType dtype, int[] shape, byte* data) => new(dtype, shape, data, owned: false);

    /// <summary>
    /// An owned, uninitialised buffer of any stored dtype: weights the backend rearranges at load time (gpt-oss's
    /// experts, transposed to [out, in]) keep their dtype rather than doubling as float32.
    /// </summary>
    public static CpuTensor AllocateStored(DType dtype, int[] shape)
    {
        var t = new CpuTensor(dtype, shape, null, owned: true);
        t._data = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(t.NumElements * DTypes.SizeOf(dtype), 64), 64);
        return t;
    }

    /// <summary>
    /// Weights [r₀ + r₁ + ..., cols] made of <paramref name="parts"/> [rᵢ, cols] without copying them: Linear
    /// runs over the parts as one dispatch. The parts stay where they are (mapped, or owned by the model).
    /// </summary>
    public static CpuTensor StackView(CpuTensor[] parts)
    {
        int cols = parts[0].Cols;
        if (parts.Any(p => p.DType != parts[0].DType || p.Cols != cols || p.Parts != null || p.Shape.Length != 2))
            throw new ArgumentException("stacked weights need one dtype, one column count and 2-D parts", nameof(parts));
        return new CpuTensor(parts[0].DType, [parts.Sum(p => p.Rows), cols], null, owned: false) { Parts = parts };
    }

    /// <summary>The tensors a <see cref="StackView"/> is made of; null for an ordinary tensor.</summary>
    public CpuTensor[]? Parts { get; private init; }

    public byte* Pointer => _data;

    /// <summary>Per-row float32 scales of an int8 weight ([Rows]); null otherwise.</summary>
    public float* Scales { get; private set; }

    /// <summary>Bytes per row as stored.</summary>
    public long RowBytes => (long)Cols * DTypes.SizeOf(DType);

    /// <summary>Whether this int8 weight is stored in the <see cref="RowQuads"/> layout (else row-major).</summary>
    public bool InRowQuads { get; private init; }

    /// <summary>
    /// An owned int8 weight [rows, cols] with its per-row scales, both 64-byte aligned, in the
    /// <see cref="RowQuads"/> layout where the shape allows (and <paramref name="rowQuads"/>, which tests turn off).
    /// </summary>
    public static CpuTensor AllocateInt8(int[] shape, bool rowQuads = true)
    {
        var t = new CpuTensor(DType.I8, shape, null, owned: true) { InRowQuads = rowQuads && shape.Length == 2 && RowQuads.Fits(shape[0], shape[1]) };
        t._data = HugePageMemory.Allocate((nuint)t.NumElements);
        t.Scales = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(t.Rows * sizeof(float), 64), 64);
        return t;
    }

    /// <summary>Element (row, col) of an int8 weight, unscaled, whatever its layout.</summary>
    public sbyte Int8At(int row, int col) =>
        ((sbyte*)_data)[InRowQuads ? RowQuads.Offset(row, col, Cols) : (long)row * Cols + col];

    private float[]? _vector;

    /// <summary>
    /// The whole tensor widened to float32, made once: norm weights and biases are read on every call,
    /// so they are widened at first use rather than per op.
    /// </summary>
    public float[] AsFloatVector()
    {
        if (_vector != null)
            return _vector;
        var v = new float[NumElements];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = DType switch
            {
                DType.F32 => ((float*)_data)[i],
                DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)_data)[i] << 16),
                DType.F16 => (float)((Half*)_data)[i],
                _ => throw new InvalidOperationException($"{DType} tensors are not read as vectors"),
            };
        }
        return _vector = v;
    }

    public Span<float> F32 => DType == DType.F32
        ? new Span<float>(_data, checked((int)NumElements))
        : throw new InvalidOperationException($"tensor is {DType}, not F32");

    public Span<float> Row(int row) => new((float*)_data + (long)row * Cols, Cols);

    public override void Dispose()
    {
        Free();
        base.Dispose();
    }

    ~CpuTensor()
    {
        // The cache belongs to another thread's backend; a finalized buffer is simply freed.
        _cache = null;
        Free();
    }

    private void Free()
    {
        if (_owned && _data != null && (_cache == null || !_cache.Return((nuint)Math.Max(NumElements * sizeof(float), 64), _data)))
            NativeMemory.AlignedFree(_data);
        if (Scales != null)
            NativeMemory.AlignedFree(Scales);
        _data = null;
        Scales = null;
    }
}
