using System.Diagnostics;
using Pagoda.Loading.Hub;

namespace Pagoda.Cli.Commands;

/// <summary>One self-redrawing line on a terminal: files, bytes and a bar, at most ten times a second.</summary>
internal sealed class TerminalProgress(TextWriter error) : IProgress<DownloadProgress>
{
    private const int Width = 30;
    private readonly object _gate = new();
    private readonly Stopwatch _since = Stopwatch.StartNew();
    private long _lastDraw = -1000;
    private bool _finished;

    public void Report(DownloadProgress p)
    {
        lock (_gate)
        {
            bool done = p.FilesDone == p.FilesTotal && p.FilesTotal > 0;
            if (_finished && !done)
                _finished = false; // a second pass (the shards) started
            if (_finished || (!done && _since.ElapsedMilliseconds - _lastDraw < 100))
                return;
            _lastDraw = _since.ElapsedMilliseconds;
            string bar = "";
            if (p.BytesTotal is > 0 and long total)
            {
                int filled = (int)(Width * Math.Clamp((double)p.BytesDone / total, 0, 1));
                bar = $"[{new string('#', filled)}{new string('.', Width - filled)}] {Mb(p.BytesDone)}/{Mb(total)} MB ";
            }
            else
            {
                bar = $"{Mb(p.BytesDone)} MB ";
            }
            error.Write($"\rDownloading {p.Repo}: {bar}{p.FilesDone}/{p.FilesTotal} files\u001b[K");
            if (done)
            {
                error.WriteLine();
                _finished = true;
            }
            error.Flush();
        }
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
