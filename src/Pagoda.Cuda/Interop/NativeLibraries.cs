using System.Reflection;
using System.Runtime.InteropServices;

namespace Pagoda.Cuda.Interop;

/// <summary>
/// Resolves the logical library names used by the imports ("cuda", "nvrtc", "cublas") by probing the
/// sonames of CUDA 13 and 12 in turn, so one build runs on either toolkit.
/// </summary>
internal static class NativeLibraries
{
    public const string Cuda = "cuda";
    public const string Nvrtc = "nvrtc";
    public const string Cublas = "cublas";

    private static readonly Dictionary<string, string[]> Candidates = new()
    {
        [Cuda] = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"],
        [Nvrtc] = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "nvrtc64_130_0.dll", "nvrtc64_120_0.dll"],
        [Cublas] = ["libcublas.so.13", "libcublas.so.12", "libcublas.so", "cublas64_13.dll", "cublas64_12.dll"],
    };

    private static readonly Dictionary<string, nint> Loaded = new();
    private static int _registered;

    /// <summary>Installs the resolver once per process.</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    /// <summary>Loads a logical library, or explains why it cannot be found.</summary>
    public static bool TryLoad(string logical, out nint handle, out string problem)
    {
        lock (Loaded)
        {
            if (Loaded.TryGetValue(logical, out handle))
            {
                problem = "";
                return true;
            }
            foreach (string name in Candidates[logical])
            {
                if (NativeLibrary.TryLoad(name, out handle))
                {
                    Loaded[logical] = handle;
                    problem = "";
                    return true;
                }
            }
        }
        problem = $"none of {string.Join(", ", Candidates[logical])} could be loaded";
        return false;
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (!Candidates.ContainsKey(name))
            return 0;
        return TryLoad(name, out nint h, out string problem) ? h : throw new DllNotFoundException($"CUDA library '{name}': {problem}");
    }
}
