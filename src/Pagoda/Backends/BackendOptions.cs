using System.Runtime.Intrinsics;

namespace Pagoda.Backends;

/// <summary>
/// The kernels' switches in one record: built once where an engine is made (flags, or the environment in
/// <see cref="FromEnvironment"/>, the one place that reads it) and handed to the backend's constructor, so no
/// kernel reads a variable or a writable static.
/// </summary>
public sealed record BackendOptions
{
    /// <summary>Every row's output independent of its batch, bit for bit (--batch-invariant).</summary>
    public bool BatchInvariant { get; init; }

    /// <summary>CPU worker threads, the calling one included (default: one per core).</summary>
    public int? CpuThreads { get; init; }

    /// <summary>CPU: 16-lane (AVX-512) kernels instead of 8-lane ones (default: where the hardware accelerates them).</summary>
    public bool? CpuVector512 { get; init; }

    /// <summary>CUDA: where compiled kernels are cached (default: ~/.cache/pagoda/kernels).</summary>
    public string? KernelCacheDir { get; init; }

    /// <summary>Whether the CPU kernels run 16 lanes wide.</summary>
    public bool UseVector512 => CpuVector512 ?? Vector512.IsHardwareAccelerated;

    /// <summary>CPU worker threads in force.</summary>
    public int NumCpuThreads => CpuThreads is > 0 and int n ? n : Environment.ProcessorCount;

    /// <summary>
    /// Options from PAGODA_CPU_THREADS, PAGODA_CACHE_DIR (else XDG_CACHE_HOME/pagoda, else ~/.cache/pagoda) and the
    /// given batch invariance; <paramref name="environment"/> defaults to this process's variables.
    /// </summary>
    public static BackendOptions FromEnvironment(bool batchInvariant = false, IReadOnlyDictionary<string, string?>? environment = null)
    {
        string? Get(string name) => environment != null ? environment.GetValueOrDefault(name) : Environment.GetEnvironmentVariable(name);
        string? root = Get("PAGODA_CACHE_DIR");
        if (string.IsNullOrEmpty(root))
        {
            string? xdg = Get("XDG_CACHE_HOME");
            root = Path.Combine(string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg, "pagoda");
        }
        return new BackendOptions
        {
            BatchInvariant = batchInvariant,
            CpuThreads = int.TryParse(Get("PAGODA_CPU_THREADS"), out int n) && n > 0 ? n : null,
            KernelCacheDir = Path.Combine(root, "kernels"),
        };
    }
}
