namespace Pagoda.Loading.Hub;

/// <summary>Sums byte and file counts from parallel downloads into <see cref="DownloadProgress"/> reports.</summary>
internal sealed class ProgressTracker(string repo, IProgress<DownloadProgress>? sink)
{
    private readonly object _gate = new();
    private long _bytes;
    private long? _total = 0;
    private int _files;
    private int _filesTotal;

    /// <summary>More files are about to be fetched; <paramref name="bytes"/> is their size when every size is known.</summary>
    public void AddFiles(int count, long? bytes)
    {
        lock (_gate)
        {
            _filesTotal += count;
            _total = _total.HasValue && bytes.HasValue ? _total + bytes : null;
        }
    }

    public void Bytes(string file, long delta)
    {
        if (delta != 0)
            Report(file, delta, 0);
    }

    public void FileDone(string file) => Report(file, 0, 1);

    private void Report(string file, long delta, int done)
    {
        DownloadProgress p;
        lock (_gate)
        {
            _bytes += delta;
            _files += done;
            p = new DownloadProgress(repo, file, _bytes, _total, _files, _filesTotal);
        }
        sink?.Report(p);
    }
}
