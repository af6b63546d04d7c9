using System.Runtime.InteropServices;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Native buffers for weights that decode streams once per token (dummy weights, int8 copies), placed in
/// 2 MiB transparent huge pages where Linux offers them. A 988 MB model in 4 KiB pages needs ~240K TLB
/// entries per token and, under KVM, each miss walks two page tables; 2 MiB pages cut that 512-fold.
/// Only whole 2 MiB pages inside the buffer are advised, so no page beyond the buffer's own bytes is
/// ever committed (peak RSS stays the bytes written).
/// </summary>
internal static unsafe partial class HugePageMemory
{
    private const nuint HugePage = 2 << 20;
    private const nuint SmallPage = 4096;
    private const int MadvHugePage = 14;

    /// <summary>Whether the kernel offers transparent huge pages to madvise'd memory (THP "always" or "madvise").</summary>
    public static bool Available { get; } = OperatingSystem.IsLinux() && ThpEnabled();

    /// <summary>Allocates <paramref name="bytes"/> (not zeroed); free with <see cref="Free"/>.</summary>
    public static byte* Allocate(nuint bytes)
    {
        bytes = Math.Max(bytes, 64);
        if (!Available || bytes < HugePage)
            return (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        var p = (byte*)NativeMemory.AlignedAlloc(bytes, HugePage);
        // Best effort: a refused advice leaves ordinary pages, which are only slower.
        _ = Madvise(p, (bytes + SmallPage - 1) & ~(SmallPage - 1), MadvHugePage);
        return p;
    }

    /// <summary>Frees a buffer from <see cref="Allocate"/>.</summary>
    public static void Free(void* p) => NativeMemory.AlignedFree(p);

    private static bool ThpEnabled()
    {
        try
        {
            // e.g. "always [madvise] never": the bracketed word is the mode in force.
            string mode = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
            return mode.Contains("[always]", StringComparison.Ordinal) || mode.Contains("[madvise]", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
