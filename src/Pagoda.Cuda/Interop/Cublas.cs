using System.Runtime.InteropServices;

namespace Pagoda.Cuda.Interop;

/// <summary>cuBLAS (libcublas.so.13 or .12): the GEMMs of Linear.</summary>
internal static unsafe partial class Cublas
{
    private const string Lib = NativeLibraries.Cublas;

    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")] public static partial int cublasCreate(out nint handle);
    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")] public static partial int cublasDestroy(nint handle);
    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")] public static partial int cublasSetStream(nint handle, nint stream);
    [LibraryImport(Lib)] public static partial int cublasSetWorkspace_v2(nint handle, ulong workspace, nuint bytes);
    [LibraryImport(Lib)] public static partial int cublasSetMathMode(nint handle, int mode);
    [LibraryImport(Lib, EntryPoint = "cublasGetVersion_v2")] public static partial int cublasGetVersion(nint handle, out int version);
    [LibraryImport(Lib)] public static partial int cublasGemmEx(nint handle, int transa, int transb, int m, int n, int k,
        void* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb, void* beta, ulong c, int cType, int ldc,
        int computeType, int algo);

    public const int OpN = 0, OpT = 1;
    public const int R32F = 0, R16F = 2, R16BF = 14;
    public const int Compute32F = 68, Compute32FPedantic = 69;
    public const int GemmDefault = -1;
    public const int PedanticMath = 2; // CUBLAS_PEDANTIC_MATH: no TF32, no reduced-precision reductions

    /// <summary>Throws a <see cref="CudaException"/> naming the call unless CUBLAS_STATUS_SUCCESS.</summary>
    public static void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException(call, status, status switch
            {
                1 => "CUBLAS_STATUS_NOT_INITIALIZED",
                3 => "CUBLAS_STATUS_ALLOC_FAILED",
                7 => "CUBLAS_STATUS_INVALID_VALUE",
                8 => "CUBLAS_STATUS_ARCH_MISMATCH",
                11 => "CUBLAS_STATUS_MAPPING_ERROR",
                13 => "CUBLAS_STATUS_EXECUTION_FAILED",
                14 => "CUBLAS_STATUS_INTERNAL_ERROR",
                15 => "CUBLAS_STATUS_NOT_SUPPORTED",
                _ => "cuBLAS error",
            });
    }
}
