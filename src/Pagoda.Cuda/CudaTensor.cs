using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// A tensor in device memory: a weight or KV buffer it owns, an activation rented from the pool, or a view of memory
/// someone else owns.
/// </summary>
internal sealed class CudaTensor : Tensor
{
    private DeviceMemory? _memory;
    private readonly DevicePool? _pool;

    public CudaTensor(DType dtype, int[] shape, DeviceMemory memory, DevicePool? pool) : base(dtype, shape)
    {
        _memory = memory;
        _pool = pool;
        Ptr = memory.Ptr;
    }

    /// <summary>A view of <paramref name="ptr"/>: disposing it frees nothing.</summary>
    public CudaTensor(DType dtype, int[] shape, ulong ptr) : base(dtype, shape) => Ptr = ptr;

    /// <summary>The device address.</summary>
    public ulong Ptr { get; }

    public long Bytes => NumElements * DTypes.SizeOf(DType);

    public override void Dispose()
    {
        var m = Interlocked.Exchange(ref _memory, null);
        if (m != null)
        {
            if (_pool != null)
                _pool.Return(m);
            else
                m.Dispose();
        }
        base.Dispose();
    }
}
