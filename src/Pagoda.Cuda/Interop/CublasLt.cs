using System.Runtime.InteropServices;

namespace Pagoda.Cuda.Interop;

/// <summary>cuBLASLt (libcublasLt.so.13 or .12): GEMMs with an algorithm chosen by measurement (<see cref="GemmTuner"/>).</summary>
internal static unsafe partial class CublasLt
{
    private const string Lib = NativeLibraries.CublasLt;

    [LibraryImport(Lib)] public static partial int cublasLtCreate(out nint handle);
    [LibraryImport(Lib)] public static partial int cublasLtDestroy(nint handle);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescCreate(out nint desc, int computeType, int scaleType);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescDestroy(nint desc);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescSetAttribute(nint desc, int attribute, void* value, nuint size);
    [LibraryImport(Lib)] public static partial int cublasLtMatrixLayoutCreate(out nint layout, int type, ulong rows, ulong cols, long ld);
    [LibraryImport(Lib)] public static partial int cublasLtMatrixLayoutDestroy(nint layout);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceCreate(out nint pref);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceDestroy(nint pref);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceSetAttribute(nint pref, int attribute, void* value, nuint size);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulAlgoGetHeuristic(nint handle, nint desc, nint a, nint b, nint c, nint d, nint pref,
        int requested, HeuristicResult* results, out int returned);
    [LibraryImport(Lib)] public static partial int cublasLtMatmul(nint handle, nint desc, void* alpha, ulong a, nint aDesc, ulong b, nint bDesc,
        void* beta, ulong c, nint cDesc, ulong d, nint dDesc, Algo* algo, ulong workspace, nuint workspaceSize, nint stream);

    public const int DescTransA = 3, DescTransB = 4;   // cublasLtMatmulDescAttributes_t
    public const int PrefMaxWorkspaceBytes = 1;        // cublasLtMatmulPreferenceAttributes_t

    /// <summary>cublasLtMatmulAlgo_t: opaque, 64 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Algo
    {
        public fixed ulong Data[8];
    }

    /// <summary>cublasLtMatmulHeuristicResult_t (96 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct HeuristicResult
    {
        public Algo Algo;
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }
}
