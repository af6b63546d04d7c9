using System.Runtime.InteropServices;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// One GPU: the driver initialised, its primary context retained and made current, and the facts the
/// kernel compiler and the KV sizing need (name, compute capability, memory, driver version).
/// </summary>
public sealed unsafe class CudaDevice : IDisposable
{
    private readonly nint _context;
    private bool _disposed;

    [ThreadStatic] private static nint _currentOnThread;

    /// <summary>Initialises the driver and retains device <paramref name="ordinal"/>'s primary context.</summary>
    public CudaDevice(int ordinal = 0)
    {
        if (!IsAvailable(out string why))
            throw new InvalidOperationException($"--device cuda: no usable NVIDIA GPU ({why}).");
        Driver.Check(Driver.cuDeviceGetCount(out int count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count)
            throw new InvalidOperationException($"--device cuda: GPU {ordinal} was asked for (each data-parallel replica and each tensor-parallel rank of a node takes a GPU of its own), but the driver reports {count}.");
        Driver.Check(Driver.cuDeviceGet(out int dev, ordinal), "cuDeviceGet");
        Ordinal = dev;
        byte* name = stackalloc byte[256];
        Driver.Check(Driver.cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
        Name = Marshal.PtrToStringUTF8((nint)name) ?? "?";
        Driver.Check(Driver.cuDeviceGetAttribute(out int major, Driver.AttrComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(out int minor, Driver.AttrComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(out int sms, Driver.AttrMultiprocessorCount, dev), "cuDeviceGetAttribute");
        Driver.Check(Driver.cuDeviceGetAttribute(out int smem, Driver.AttrMaxSharedMemoryPerBlockOptin, dev), "cuDeviceGetAttribute");
        MaxSharedMemoryPerBlock = smem;
        Driver.Check(Driver.cuDriverGetVersion(out int driver), "cuDriverGetVersion");
        Driver.Check(Driver.cuDeviceTotalMem(out nuint total, dev), "cuDeviceTotalMem_v2");
        (Major, Minor, MultiprocessorCount, DriverVersion, TotalMemory) = (major, minor, sms, driver, (long)total);
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(out _context, dev), "cuDevicePrimaryCtxRetain");
        MakeCurrent();
    }

    /// <summary>Device ordinal.</summary>
    public int Ordinal { get; }

    /// <summary>Marketing name, e.g. "NVIDIA H100 80GB HBM3".</summary>
    public string Name { get; }

    /// <summary>Compute capability major version.</summary>
    public int Major { get; }

    /// <summary>Compute capability minor version.</summary>
    public int Minor { get; }

    /// <summary>Streaming multiprocessors.</summary>
    public int MultiprocessorCount { get; }

    /// <summary>Shared memory one block may use when it opts in (bytes).</summary>
    public int MaxSharedMemoryPerBlock { get; }

    /// <summary>CUDA driver version (e.g. 13000).</summary>
    public int DriverVersion { get; }

    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }

    /// <summary>Free and total device memory now.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        Driver.Check(Driver.cuMemGetInfo(out nuint free, out nuint total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    /// <summary>Makes this device's context current on the calling thread (cheap when it already is).</summary>
    public void MakeCurrent()
    {
        if (_currentOnThread == _context)
            return;
        Driver.Check(Driver.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
        _currentOnThread = _context;
    }

    /// <summary>Whether the driver loads and reports at least one GPU; otherwise why not.</summary>
    public static bool IsAvailable(out string reason)
    {
        NativeLibraries.Register();
        if (!NativeLibraries.TryLoad(NativeLibraries.Cuda, out _, out reason))
        {
            reason = $"the CUDA driver library was not found: {reason}";
            return false;
        }
        int status = Driver.cuInit(0);
        if (status != 0)
        {
            reason = $"cuInit failed: {Driver.Describe(status)}";
            return false;
        }
        status = Driver.cuDeviceGetCount(out int count);
        if (status != 0 || count == 0)
        {
            reason = status != 0 ? $"cuDeviceGetCount failed: {Driver.Describe(status)}" : "the driver reports no GPU";
            return false;
        }
        reason = "";
        return true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Driver.cuDevicePrimaryCtxRelease(Ordinal);
    }
}
