using System.Runtime.InteropServices;

namespace Pagoda.Cuda.Interop;

/// <summary>
/// The CUDA driver API calls Pagoda uses (libcuda.so.1). Versioned exports are named explicitly
/// (cuMemAlloc_v2, cuStreamBeginCapture_v2, ...): the unversioned symbols are the old ABI.
/// </summary>
internal static unsafe partial class Driver
{
    private const string Lib = NativeLibraries.Cuda;

    [LibraryImport(Lib)] public static partial int cuInit(uint flags);
    [LibraryImport(Lib)] public static partial int cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] public static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] public static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] public static partial int cuDeviceGetName(byte* name, int len, int device);
    [LibraryImport(Lib)] public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] public static partial int cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRetain(out nint ctx, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Lib)] public static partial int cuCtxSetCurrent(nint ctx);
    [LibraryImport(Lib)] public static partial int cuCtxSynchronize();
    [LibraryImport(Lib)] public static partial int cuGetErrorName(int error, out nint name);
    [LibraryImport(Lib)] public static partial int cuGetErrorString(int error, out nint text);

    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] public static partial int cuMemAlloc(out ulong ptr, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] public static partial int cuMemFree(ulong ptr);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] public static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Lib, EntryPoint = "cuMemAllocHost_v2")] public static partial int cuMemAllocHost(out nint ptr, nuint bytes);
    [LibraryImport(Lib)] public static partial int cuMemFreeHost(nint ptr);
    [LibraryImport(Lib, EntryPoint = "cuMemHostGetDevicePointer_v2")] public static partial int cuMemHostGetDevicePointer(out ulong dptr, nint p, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoD_v2")] public static partial int cuMemcpyHtoD(ulong dst, void* src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoH_v2")] public static partial int cuMemcpyDtoH(void* dst, ulong src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static partial int cuMemcpyHtoDAsync(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static partial int cuMemcpyDtoHAsync(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static partial int cuMemcpyDtoDAsync(ulong dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemsetD32Async(ulong dst, uint value, nuint count, nint stream);

    [LibraryImport(Lib)] public static partial int cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] public static partial int cuModuleUnload(nint module);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial int cuModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Lib)] public static partial int cuFuncSetAttribute(nint function, int attribute, int value);
    [LibraryImport(Lib)] public static partial int cuLaunchKernelEx(LaunchConfig* config, nint f, void** kernelParams, void** extra);

    /// <summary>CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.</summary>
    public const int LaunchAttributeProgrammaticStreamSerialization = 6;

    /// <summary>CUlaunchConfig.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LaunchConfig
    {
        public uint GridX, GridY, GridZ, BlockX, BlockY, BlockZ, SharedBytes;
        public nint Stream;
        public LaunchAttribute* Attributes;
        public uint NumAttributes;
    }

    /// <summary>CUlaunchAttribute: an id, padding to 8 bytes, then a 64-byte value union (here its first int).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    public struct LaunchAttribute
    {
        [FieldOffset(0)] public int Id;
        [FieldOffset(8)] public int Value;
    }

    [LibraryImport(Lib)] public static partial int cuLaunchKernel(nint f, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemBytes, nint stream, void** kernelParams, void** extra);

    [LibraryImport(Lib)] public static partial int cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] public static partial int cuStreamDestroy(nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Lib, EntryPoint = "cuStreamBeginCapture_v2")] public static partial int cuStreamBeginCapture(nint stream, int mode);
    [LibraryImport(Lib)] public static partial int cuStreamEndCapture(nint stream, out nint graph);
    [LibraryImport(Lib)] public static partial int cuGraphInstantiateWithFlags(out nint exec, nint graph, ulong flags);
    [LibraryImport(Lib)] public static partial int cuGraphLaunch(nint exec, nint stream);
    [LibraryImport(Lib)] public static partial int cuGraphExecDestroy(nint exec);
    [LibraryImport(Lib)] public static partial int cuGraphDestroy(nint graph);
    [LibraryImport(Lib)] public static partial int cuProfilerStart();
    [LibraryImport(Lib)] public static partial int cuProfilerStop();

    public const int AttrComputeCapabilityMajor = 75;
    public const int AttrComputeCapabilityMinor = 76;
    public const int AttrMultiprocessorCount = 16;
    public const int AttrMaxSharedMemoryPerBlockOptin = 97;
    public const int FuncAttrMaxDynamicSharedSize = 8;
    public const uint StreamNonBlocking = 1;
    public const int CaptureModeThreadLocal = 1;

    /// <summary>Throws a <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="status"/> is CUDA_SUCCESS.</summary>
    public static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException(call, status, Describe(status));
    }

    /// <summary>The driver's name and text for a status code.</summary>
    public static string Describe(int status)
    {
        try
        {
            string name = cuGetErrorName(status, out nint n) == 0 ? Marshal.PtrToStringUTF8(n) ?? "?" : "CUDA_ERROR_UNKNOWN";
            string text = cuGetErrorString(status, out nint t) == 0 ? Marshal.PtrToStringUTF8(t) ?? "" : "";
            return $"{name}: {text}";
        }
        catch (DllNotFoundException)
        {
            return $"CUDA error {status}";
        }
    }
}
