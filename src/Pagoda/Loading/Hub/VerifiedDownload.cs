using System.Security.Cryptography;
using System.Text;

namespace Pagoda.Loading.Hub;

/// <summary>What a downloaded file must hash to: an LFS file's sha256, or a git blob's sha1 (the Hub's ETag).</summary>
internal sealed record Checksum(string Kind, string Hex)
{
    /// <summary>The checksum an ETag stands for: 64 hex digits are an LFS sha256, 40 a git blob id.</summary>
    public static Checksum? FromEtag(string etag) => etag.Length switch
    {
        64 when etag.All(char.IsAsciiHexDigit) => new Checksum("sha256", etag.ToLowerInvariant()),
        40 when etag.All(char.IsAsciiHexDigit) => new Checksum("git-sha1", etag.ToLowerInvariant()),
        _ => null,
    };
}

/// <summary>A download whose bytes did not match the expected checksum, twice or from a fresh start.</summary>
internal sealed class ChecksumMismatchException(string message) : Exception(message)
{
    /// <summary>The repository file whose download failed (set by the downloader that knows it).</summary>
    public string? File { get; init; }
}

/// <summary>
/// Fetches one file the way huggingface_hub does: under a lock file (so two processes never write the
/// same file), into a partial file (resumed if present; huggingface_hub names it `blob.incomplete`),
/// verified, then renamed into place so the final name only ever holds a complete, verified file.
/// </summary>
internal static class VerifiedDownload
{
    public static async Task FetchAsync(HubHttp http, Uri uri, string partial, string finalPath, string lockPath, long? size,
        Checksum? checksum, Action<long> onBytes, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        Directory.CreateDirectory(Path.GetDirectoryName(partial)!);
        Directory.CreateDirectory(Path.GetDirectoryName(finalPath)!);
        await using var held = await AcquireLockAsync(lockPath, ct);
        if (File.Exists(finalPath))
        {
            onBytes(new FileInfo(finalPath).Length); // another process fetched it while we waited
            return;
        }
        for (int pass = 0; ; pass++)
        {
            long resumedFrom = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            onBytes(resumedFrom);
            await http.DownloadAsync(uri, partial, size, onBytes, ct);
            if (checksum == null)
                break;
            string actual = await HashAsync(partial, checksum.Kind, ct);
            if (actual == checksum.Hex)
                break;
            long bad = new FileInfo(partial).Length;
            File.Delete(partial);
            onBytes(-bad);
            // A resumed file may hold a stale or damaged prefix: one fresh attempt before giving up.
            if (pass > 0 || resumedFrom == 0)
                throw new ChecksumMismatchException(
                    $"the downloaded bytes have {checksum.Kind} {actual}, the hub promised {checksum.Hex}; the corrupt download was deleted");
        }
        File.Move(partial, finalPath, overwrite: true);
    }

    /// <summary>Hashes a file as <paramref name="kind"/> (sha256, or git-sha1 over "blob N\0" + content).</summary>
    public static async Task<string> HashAsync(string path, string kind, CancellationToken ct)
    {
        await using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        using var hash = IncrementalHash.CreateHash(kind == "sha256" ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1);
        if (kind == "git-sha1")
            hash.AppendData(Encoding.ASCII.GetBytes($"blob {f.Length}\0"));
        var buffer = new byte[1 << 16];
        for (int n; (n = await f.ReadAsync(buffer, ct)) > 0;)
            hash.AppendData(buffer, 0, n);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// An exclusive lock on <paramref name="path"/>. .NET takes FileShare.None as flock(LOCK_EX) on Unix, the
    /// same lock Python's filelock takes, so Pagoda and huggingface_hub also exclude each other.
    /// </summary>
    public static async Task<FileStream> AcquireLockAsync(string path, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                await Task.Delay(50, ct);
            }
        }
    }
}
