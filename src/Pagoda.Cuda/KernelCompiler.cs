using System.Security.Cryptography;
using System.Text;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Compiles the embedded CUDA C sources with NVRTC for the device's architecture and caches the cubin
/// on disk, keyed by the source hash, the defines, the architecture, and the NVRTC and driver versions.
/// </summary>
internal static unsafe class KernelCompiler
{
    private static readonly string[] Sources = ["kernels.cu", "attention.cu", "gemm.cu", "sampling.cu", "moe.cu"];

    /// <summary>The concatenated kernel sources, as embedded in this assembly.</summary>
    public static string Source()
    {
        var sb = new StringBuilder();
        foreach (string name in Sources)
        {
            using var s = typeof(KernelCompiler).Assembly.GetManifestResourceStream($"Pagoda.Cuda.Kernels.{name}")
                ?? throw new InvalidOperationException($"embedded kernel source {name} is missing");
            using var r = new StreamReader(s);
            sb.Append(r.ReadToEnd()).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>
    /// Returns a cubin for the sources with <paramref name="defines"/>, from the cache in <paramref name="cacheDir"/>
    /// (default: ~/.cache/pagoda/kernels) when present.
    /// </summary>
    public static (byte[] Cubin, bool FromCache, string Path) Compile(CudaDevice device, string[] defines, string? cacheDir)
    {
        string source = Source();
        string arch = $"sm_{device.Major}{device.Minor}";
        Nvrtc.Check(Nvrtc.nvrtcVersion(out int major, out int minor), "nvrtcVersion");
        string keyText = $"{source}\n{string.Join(' ', defines)}\n{arch}\nnvrtc {major}.{minor}\ndriver {device.DriverVersion}";
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(keyText)))[..32];
        string dir = cacheDir ?? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "pagoda", "kernels");
        string path = System.IO.Path.Combine(dir, $"pagoda-{arch}-{key}.cubin");
        if (File.Exists(path))
            return (File.ReadAllBytes(path), true, path);

        string[] options = [$"--gpu-architecture={arch}", "--std=c++17", .. defines.Select(d => $"-D{d}")];
        byte[] cubin = Build(source, options);
        try
        {
            Directory.CreateDirectory(dir);
            string tmp = path + $".{Environment.ProcessId}.tmp";
            File.WriteAllBytes(tmp, cubin);
            File.Move(tmp, path, overwrite: true);
        }
        catch (IOException)
        {
            // A read-only or full cache folder only costs a recompile next time.
        }
        catch (UnauthorizedAccessException)
        {
        }
        return (cubin, false, path);
    }

    private static byte[] Build(string source, string[] options)
    {
        Nvrtc.Check(Nvrtc.nvrtcCreateProgram(out nint prog, source, "pagoda_kernels.cu", 0, 0, 0), "nvrtcCreateProgram");
        try
        {
            var utf8 = options.Select(o => Encoding.UTF8.GetBytes(o + "\0")).ToArray();
            var pins = utf8.Select(b => System.Runtime.InteropServices.GCHandle.Alloc(b, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
            try
            {
                byte** opts = stackalloc byte*[utf8.Length];
                for (int i = 0; i < utf8.Length; i++)
                    opts[i] = (byte*)pins[i].AddrOfPinnedObject();
                int status = Nvrtc.nvrtcCompileProgram(prog, utf8.Length, opts);
                if (status != 0)
                    throw new CudaException("nvrtcCompileProgram", status, "kernel compilation failed:\n" + Log(prog));
            }
            finally
            {
                foreach (var p in pins)
                    p.Free();
            }
            Nvrtc.Check(Nvrtc.nvrtcGetCUBINSize(prog, out nuint size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin)
                Nvrtc.Check(Nvrtc.nvrtcGetCUBIN(prog, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally
        {
            Nvrtc.nvrtcDestroyProgram(ref prog);
        }
    }

    private static string Log(nint prog)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(prog, out nuint size) != 0 || size == 0)
            return "(no log)";
        var buf = new byte[(int)size];
        fixed (byte* b = buf)
            Nvrtc.nvrtcGetProgramLog(prog, b);
        return Encoding.UTF8.GetString(buf).TrimEnd('\0');
    }
}
