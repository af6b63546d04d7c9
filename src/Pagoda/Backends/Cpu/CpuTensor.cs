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

    private CpuTensor(DType dtype, int[] shape, byte* data, bool owned) : base(dtype, shape)
    {
        _data = data;
        _owned = owned;
    }

    /// <summary>
    /// An owned float32 buffer. <paramref name="zero"/> false leaves large buffers (the KV pool) untouched,
    /// so the OS commits their pages only as tokens are written.
    /// </summary>
    public static CpuTensor Allocate(int[] shape, bool zero = true)
    {
        var t = new CpuTensor(DType.F32, shape, null, owned: true);
        nuint bytes = (nuint)Math.Max(t.NumElements * sizeof(float), 64);
        t._data = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        if (zero)
            NativeMemory.Clear(t._data, bytes);
        return t;
    }

    public static CpuTensor Borrow(DType dtype, int[] shape, byte* data) => new(dtype, shape, data, owned: false);

    public byte* Pointer => _data;

    public Span<float> F32 => DType == DType.F32
        ? new Span<float>(_data, checked((int)NumElements))
        : throw new InvalidOperationException($"tensor is {DType}, not F32");

    public Span<float> Row(int row) => new((float*)_data + (long)row * Cols, Cols);

    public override void Dispose()
    {
        if (_owned && _data != null)
            NativeMemory.AlignedFree(_data);
        _data = null;
        base.Dispose();
    }

    ~CpuTensor()
    {
        if (_owned && _data != null)
            NativeMemory.AlignedFree(_data);
    }
}
