using System.Diagnostics;

namespace Pagoda.Cuda;

/// <summary>
/// Engines starting on one GPU size their KV caches one after another. An engine's share of the device is measured as
/// the memory the device lost since its backend began, which also counts another engine's weights and KV cache when
/// both start at once (two `pagoda serve` started together for disaggregated prefill left the second no room for its
/// KV cache). The lock is a file per device in the temp folder, held exclusively from the backend's start until its
/// KV cache and graphs are made; the operating system drops it with a process that dies.
/// </summary>
internal sealed class CudaStartupLock : IDisposable
{
    private FileStream? _file;

    private CudaStartupLock(FileStream? file) => _file = file;

    /// <summary>The lock file of device <paramref name="ordinal"/>.</summary>
    public static string PathFor(int ordinal) => Path.Combine(Path.GetTempPath(), $"pagoda-cuda{ordinal}.startup.lock");

    /// <summary>
    /// Waits for the lock at <paramref name="path"/> up to <paramref name="timeout"/>. A temp folder that cannot hold the
    /// file gives no lock (the engines then measure as they did without it).
    /// </summary>
    public static CudaStartupLock Acquire(string path, TimeSpan timeout)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new CudaStartupLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (Exception e) when (e is UnauthorizedAccessException or DirectoryNotFoundException)
            {
                return new CudaStartupLock(null);
            }
            catch (IOException) when (waited.Elapsed < timeout)
            {
                Thread.Sleep(50);   // another engine is starting on this GPU
            }
            catch (IOException e)
            {
                throw new TimeoutException($"another engine has been starting on this GPU for {timeout.TotalMinutes:F0} minutes (it holds {path}); " +
                    "start this one once it serves", e);
            }
        }
    }

    /// <summary>Whether the lock is held.</summary>
    public bool Held => _file != null;

    /// <inheritdoc />
    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
    }
}
