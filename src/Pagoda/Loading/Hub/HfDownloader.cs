using System.Net;
using System.Text.Json;

namespace Pagoda.Loading.Hub;

/// <summary>
/// Fetches a model from the Hugging Face Hub into the shared cache, as huggingface_hub's
/// snapshot_download + hf_hub_download: resolve the revision to a commit with the repo-info API,
/// HEAD each needed file for its ETag (the blob name and checksum), download missing blobs, link
/// them into snapshots/&lt;commit&gt;. A complete snapshot already in the cache is used without any request.
/// </summary>
internal sealed class HfDownloader(HubSettings settings, ProgressTracker progress)
{
    private sealed record FileMeta(string File, string Etag, long? Size, Uri Download);

    public async Task<string> ResolveAsync(string repoId, string revision, string cacheDir, CancellationToken ct)
    {
        var cache = new HfCache(cacheDir, repoId);
        if (cache.CachedCommit(revision) is { } cached && ModelFiles.IsComplete(cache.SnapshotDir(cached)))
            return cache.SnapshotDir(cached);
        if (settings.Offline)
            throw new ModelLoadException(repoId,
                $"revision '{revision}' is not in the cache ({cache.RepoFolder}) and HF_HUB_OFFLINE is set, so it cannot be downloaded");

        using var http = new HubHttp(settings, settings.Endpoint, settings.Token);
        string current = "";
        try
        {
            var (commit, files) = await RepoInfoAsync(http, repoId, revision, ct);
            cache.WriteRef(revision, commit);
            string snapshot = cache.SnapshotDir(commit);
            await FetchAsync(http, cache, repoId, commit, ModelFiles.FirstPass(files, repoId), f => current = f, ct);
            var shards = ModelFiles.Shards(snapshot);
            if (shards.FirstOrDefault(s => !files.Contains(s)) is { } missing)
                throw new ModelLoadException(repoId, $"the weight index names '{missing}', which the repository does not have");
            await FetchAsync(http, cache, repoId, commit, shards, f => current = f, ct);
            return snapshot;
        }
        catch (HubHttpException e)
        {
            throw new ModelLoadException(repoId, Explain(e, revision, current), e);
        }
        catch (HubUnreachableException e)
        {
            throw new ModelLoadException(repoId,
                $"{e.Message}; check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache", e);
        }
        catch (ChecksumMismatchException e)
        {
            // Files download in parallel: `current` is only the last one started, the exception knows its own.
            throw new ModelLoadException($"{repoId}/{e.File ?? current}", e.Message, e);
        }
    }

    private string Explain(HubHttpException e, string revision, string file)
    {
        return (e.Status, e.ErrorCode) switch
        {
            (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, "GatedRepo") =>
                $"the repository is gated (HTTP {(int)e.Status}): accept its conditions on the model page and set HF_TOKEN to a token of that account",
            (HttpStatusCode.Unauthorized, _) when settings.Token == null =>
                "repository not found, or it is private or gated (HTTP 401); if it exists, set HF_TOKEN to an access token that can read it",
            (HttpStatusCode.Unauthorized, _) =>
                "repository not found, or the token in HF_TOKEN cannot read it (HTTP 401)",
            (HttpStatusCode.Forbidden, _) =>
                "access denied (HTTP 403): the repository is gated or private; set HF_TOKEN to a token that has been granted access",
            (HttpStatusCode.NotFound, "RevisionNotFound") => $"revision '{revision}' not found (HTTP 404)",
            (HttpStatusCode.NotFound, "EntryNotFound") => $"file '{file}' not found at revision '{revision}' (HTTP 404)",
            (HttpStatusCode.NotFound, _) => $"no such repository or revision '{revision}' on {settings.Endpoint} (HTTP 404)",
            _ => $"the hub refused the request ({e.Message}{(e.ServerMessage is { } m ? ": " + m : "")})",
        };
    }

    private async Task<(string Commit, HashSet<string> Files)> RepoInfoAsync(HubHttp http, string repoId, string revision, CancellationToken ct)
    {
        var uri = new Uri($"{settings.Endpoint}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");
        using var response = await http.SendAsync(HttpMethod.Get, uri, stopAtAbsoluteRedirect: false, ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(settings.MetadataTimeout);
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(timeout.Token));
            string commit = doc.RootElement.GetProperty("sha").GetString() ?? "";
            if (!HfCache.IsCommitHash(commit))
                throw new JsonException($"'sha' is '{commit}', not a commit hash");
            var files = doc.RootElement.GetProperty("siblings").EnumerateArray()
                .Select(s => s.GetProperty("rfilename").GetString()!).ToHashSet(StringComparer.Ordinal);
            return (commit, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelLoadException(repoId, $"{uri} did not answer with Hub repo info ({e.Message}); is HF_ENDPOINT a Hugging Face Hub?");
        }
    }

    private async Task FetchAsync(HubHttp http, HfCache cache, string repoId, string commit, List<string> files,
        Action<string> onFile, CancellationToken ct)
    {
        // A file already in this commit's snapshot needs no request (hf_hub_download's shortcut for commit hashes).
        var missing = files.Where(f => !File.Exists(Path.Combine(cache.SnapshotDir(commit), f))).ToList();
        if (missing.Count == 0)
            return;
        var metas = new FileMeta[missing.Count];
        await Parallel.ForAsync(0, missing.Count, Options(ct), async (i, token) =>
        {
            onFile(missing[i]);
            metas[i] = await HeadAsync(http, repoId, commit, missing[i], token);
        });
        progress.AddFiles(metas.Length, metas.All(m => m.Size.HasValue) ? metas.Sum(m => m.Size!.Value) : null);
        await Parallel.ForEachAsync(metas, Options(ct), async (m, token) =>
        {
            onFile(m.File);
            if (!File.Exists(cache.BlobPath(m.Etag)))
            {
                try
                {
                    await VerifiedDownload.FetchAsync(http, m.Download, cache.BlobPath(m.Etag) + ".incomplete", cache.BlobPath(m.Etag),
                        cache.LockPath(m.Etag), m.Size,
                        Checksum.FromEtag(m.Etag), n => progress.Bytes(m.File, n), token);
                }
                catch (ChecksumMismatchException e) when (e.File == null)
                {
                    throw new ChecksumMismatchException(e.Message) { File = m.File };
                }
            }
            else
            {
                progress.Bytes(m.File, new FileInfo(cache.BlobPath(m.Etag)).Length);
            }
            cache.Link(commit, m.File, m.Etag);
            progress.FileDone(m.File);
        });
    }

    private ParallelOptions Options(CancellationToken ct) => new() { MaxDegreeOfParallelism = settings.MaxParallelDownloads, CancellationToken = ct };

    private async Task<FileMeta> HeadAsync(HubHttp http, string repoId, string commit, string file, CancellationToken ct)
    {
        string path = string.Join('/', file.Split('/').Select(Uri.EscapeDataString));
        var uri = new Uri($"{settings.Endpoint}/{repoId}/resolve/{commit}/{path}");
        using var r = await http.SendAsync(HttpMethod.Head, uri, stopAtAbsoluteRedirect: true, ct);
        string? Header(string name) => r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault()
            : r.Content.Headers.TryGetValues(name, out var cv) ? cv.FirstOrDefault() : null;
        // LFS files answer with a redirect to the CDN; X-Linked-* describe the LFS object, not the pointer.
        string etag = (Header("X-Linked-Etag") ?? Header("ETag") ?? "").Replace("W/", "").Trim('"');
        if (etag.Length == 0 || etag.Contains('/') || etag.Contains(".."))
            throw new ModelLoadException($"{repoId}/{file}", $"{uri} answered without a usable ETag; is HF_ENDPOINT a Hugging Face Hub?");
        long? size = long.TryParse(Header("X-Linked-Size"), out long linked) ? linked : r.Content.Headers.ContentLength;
        var download = (int)r.StatusCode is >= 300 and < 400 && r.Headers.Location is { } loc
            ? (loc.IsAbsoluteUri ? loc : new Uri(uri, loc)) : uri;
        return new FileMeta(file, etag, size, download);
    }
}
