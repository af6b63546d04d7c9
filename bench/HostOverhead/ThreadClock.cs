using System.Runtime.InteropServices;

namespace Pagoda.Bench.HostOverhead;

/// <summary>
/// CPU time of the calling thread (Linux clock_gettime): unlike wall time it does not count the time the
/// thread waited for a core, so it stays meaningful on a shared, busy machine.
/// </summary>
internal static partial class ThreadClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>Microseconds of CPU this thread has used, or NaN where the clock is not available.</summary>
    public static double Microseconds()
    {
        if (!OperatingSystem.IsLinux() || ClockGetTime(ClockThreadCpuTimeId, out var t) != 0)
            return double.NaN;
        return t.Seconds * 1e6 + t.Nanoseconds / 1e3;
    }
}
