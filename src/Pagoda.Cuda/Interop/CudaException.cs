namespace Pagoda.Cuda.Interop;

/// <summary>A failed CUDA driver, NVRTC or cuBLAS call: names the call, the library's code and its meaning.</summary>
public sealed class CudaException(string call, int code, string meaning)
    : Exception($"{call} failed: {meaning} ({code})")
{
    /// <summary>The API call that failed (e.g. cuMemAlloc_v2).</summary>
    public string Call { get; } = call;

    /// <summary>The library's numeric status.</summary>
    public int Code { get; } = code;
}
