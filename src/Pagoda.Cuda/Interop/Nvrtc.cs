using System.Runtime.InteropServices;

namespace Pagoda.Cuda.Interop;

/// <summary>NVRTC, the runtime CUDA C++ compiler (libnvrtc.so.13 or .12).</summary>
internal static unsafe partial class Nvrtc
{
    private const string Lib = NativeLibraries.Nvrtc;

    [LibraryImport(Lib)] public static partial int nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int nvrtcCreateProgram(out nint prog, string src, string name, int numHeaders, nint headers, nint includeNames);
    [LibraryImport(Lib)] public static partial int nvrtcCompileProgram(nint prog, int numOptions, byte** options);
    [LibraryImport(Lib)] public static partial int nvrtcDestroyProgram(ref nint prog);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBINSize(nint prog, out nuint size);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBIN(nint prog, byte* cubin);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLogSize(nint prog, out nuint size);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLog(nint prog, byte* log);
    [LibraryImport(Lib)] public static partial nint nvrtcGetErrorString(int result);

    /// <summary>Throws a <see cref="CudaException"/> naming the call unless NVRTC_SUCCESS.</summary>
    public static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException(call, status, Marshal.PtrToStringUTF8(nvrtcGetErrorString(status)) ?? "NVRTC error");
    }
}
