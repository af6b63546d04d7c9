using System.Runtime.InteropServices;

namespace Pagoda.Cuda.Interop;

/// <summary>A device allocation (cuMemAlloc_v2), freed with cuMemFree_v2.</summary>
internal sealed class DeviceMemory : SafeHandle
{
    public DeviceMemory(long bytes) : base(0, ownsHandle: true)
    {
        Driver.Check(Driver.cuMemAlloc(out ulong p, (nuint)Math.Max(bytes, 256)), "cuMemAlloc_v2");
        SetHandle((nint)p);
        Bytes = bytes;
    }

    public long Bytes { get; }
    public ulong Ptr => (ulong)handle;
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle() => Driver.cuMemFree((ulong)handle) == 0;
}

/// <summary>Page-locked host memory (cuMemAllocHost_v2): the source and target of asynchronous copies.</summary>
internal sealed unsafe class PinnedMemory : SafeHandle
{
    public PinnedMemory(long bytes) : base(0, ownsHandle: true)
    {
        Driver.Check(Driver.cuMemAllocHost(out nint p, (nuint)Math.Max(bytes, 64)), "cuMemAllocHost_v2");
        SetHandle(p);
        Bytes = bytes;
    }

    public long Bytes { get; }
    public byte* Pointer => (byte*)handle;
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle() => Driver.cuMemFreeHost(handle) == 0;
}

/// <summary>A loaded module (cuModuleLoadData).</summary>
internal sealed class CudaModuleHandle : SafeHandle
{
    public CudaModuleHandle(nint module) : base(0, ownsHandle: true) => SetHandle(module);
    public nint Module => handle;
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle() => Driver.cuModuleUnload(handle) == 0;
}

/// <summary>A non-blocking stream.</summary>
internal sealed class StreamHandle : SafeHandle
{
    public StreamHandle() : base(0, ownsHandle: true)
    {
        Driver.Check(Driver.cuStreamCreate(out nint s, Driver.StreamNonBlocking), "cuStreamCreate");
        SetHandle(s);
    }

    public nint Stream => handle;
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle() => Driver.cuStreamDestroy(handle) == 0;
}

/// <summary>An instantiated CUDA graph (cuGraphInstantiateWithFlags); owns its source graph too.</summary>
internal sealed class GraphExecHandle : SafeHandle
{
    private readonly nint _graph;

    public GraphExecHandle(nint graph) : base(0, ownsHandle: true)
    {
        _graph = graph;
        Driver.Check(Driver.cuGraphInstantiateWithFlags(out nint exec, graph, 0), "cuGraphInstantiateWithFlags");
        SetHandle(exec);
    }

    public nint Exec => handle;
    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        bool ok = Driver.cuGraphExecDestroy(handle) == 0;
        return Driver.cuGraphDestroy(_graph) == 0 && ok;
    }
}

/// <summary>A cuBLAS handle bound to a stream.</summary>
internal sealed class CublasHandle : SafeHandle
{
    public CublasHandle() : base(0, ownsHandle: true)
    {
        Cublas.Check(Cublas.cublasCreate(out nint h), "cublasCreate_v2");
        SetHandle(h);
    }

    public nint Handle => handle;
    public override bool IsInvalid => handle == 0;
    protected override bool ReleaseHandle() => Cublas.cublasDestroy(handle) == 0;
}
