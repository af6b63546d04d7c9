using System.Net;
using System.Text.Json;

namespace Pagoda.Loading.Hub;

/// <summary>
/// Fetches a model from ModelScope into modelscope's own cache layout: one flat folder per model,
/// `&lt;root&gt;/&lt;owner&gt;/&lt;name with '.' as '___'&gt;`, where root is MODELSCOPE_CACHE/models (or
/// --download-dir, as modelscope's cache_dir), with partial files in `&lt;root&gt;/._____temp/&lt;owner&gt;/&lt;name&gt;/`
/// until they are verified (sha256 from the file listing).
/// The API is modelscope's: `/api/v1/models/{id}/repo/files?Revision=..&amp;Recursive=True` lists files,
/// `/api/v1/models/{id}/repo?Revision=..&amp;FilePath=..` serves one. Default revision: master.
/// modelscope's own pickled bookkeeping (.msc/.mdl) is not written, so Python re-checks files it finds.
/// </summary>
internal sealed class ModelScopeDownloader(HubSettings settings, ProgressTracker progress)
{
    private const string TempFolder = "._____temp";

    private sealed record RemoteFile(string Path, long? Size, string? Sha256);

    public static string ModelDir(string cacheRoot, string modelId)
    {
        var (owner, name) = Split(modelId);
        return Path.Combine(cacheRoot, owner, name.Replace(".", "___"));
    }

    private static (string Owner, string Name) Split(string modelId) =>
        modelId.IndexOf('/') is int i and > 0 ? (modelId[..i], modelId[(i + 1)..]) : ("damo", modelId);

    public async Task<string> ResolveAsync(string modelId, string? revision, string cacheRoot, CancellationToken ct)
    {
        string dir = ModelDir(cacheRoot, modelId);
        if (ModelFiles.IsComplete(dir))
            return dir;
        if (settings.Offline)
            throw new ModelLoadException(modelId,
                $"not in the ModelScope cache ({dir}) and HF_HUB_OFFLINE is set, so it cannot be downloaded");
        revision ??= "master";
        var (owner, name) = Split(modelId);
        string temp = Path.Combine(cacheRoot, TempFolder, owner, name);
        using var http = new HubHttp(settings, settings.ModelScopeEndpoint, settings.ModelScopeToken);
        try
        {
            var files = await ListAsync(http, modelId, revision, ct);
            await FetchAsync(http, modelId, revision, dir, temp, ModelFiles.FirstPass(files.Keys, modelId).Select(f => files[f]), ct);
            var shards = ModelFiles.Shards(dir);
            if (shards.FirstOrDefault(s => !files.ContainsKey(s)) is { } missing)
                throw new ModelLoadException(modelId, $"the weight index names '{missing}', which the model does not have");
            await FetchAsync(http, modelId, revision, dir, temp, shards.Select(s => files[s]), ct);
            return dir;
        }
        catch (HubHttpException e)
        {
            throw new ModelLoadException(modelId, e.Status switch
            {
                HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden =>
                    $"ModelScope refused access (HTTP {(int)e.Status}); for a private or gated model set MODELSCOPE_API_TOKEN",
                HttpStatusCode.NotFound => $"no such model or revision '{revision}' on ModelScope ({settings.ModelScopeEndpoint}, HTTP 404)",
                _ => $"ModelScope refused the request ({e.Message})",
            }, e);
        }
        catch (HubUnreachableException e)
        {
            throw new ModelLoadException(modelId, $"{e.Message}; check the network and MODELSCOPE_DOMAIN", e);
        }
        catch (ChecksumMismatchException e)
        {
            throw new ModelLoadException(modelId, e.Message, e);
        }
    }

    private async Task<Dictionary<string, RemoteFile>> ListAsync(HubHttp http, string modelId, string revision, CancellationToken ct)
    {
        var uri = new Uri($"{settings.ModelScopeEndpoint}/api/v1/models/{modelId}/repo/files?Revision={Uri.EscapeDataString(revision)}&Recursive=True");
        using var response = await http.SendAsync(HttpMethod.Get, uri, stopAtAbsoluteRedirect: false, ct);
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
            var root = doc.RootElement;
            if (root.TryGetProperty("Code", out var code) && code.ValueKind == JsonValueKind.Number && code.GetInt64() != 200)
                throw new ModelLoadException(modelId, $"ModelScope answered code {code.GetInt64()}: " +
                    (root.TryGetProperty("Message", out var m) ? m.GetString() : "no message"));
            return root.GetProperty("Data").GetProperty("Files").EnumerateArray()
                .Where(f => f.GetProperty("Type").GetString() == "blob")
                .Select(f => new RemoteFile(f.GetProperty("Path").GetString()!,
                    f.TryGetProperty("Size", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : null,
                    f.TryGetProperty("Sha256", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null))
                .ToDictionary(f => f.Path, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelLoadException(modelId, $"{uri} did not answer with a ModelScope file list ({e.Message})");
        }
    }

    private async Task FetchAsync(HubHttp http, string modelId, string revision, string dir, string temp,
        IEnumerable<RemoteFile> wanted, CancellationToken ct)
    {
        // modelscope keeps one copy per model, so a present file of the listed size is taken as current.
        var missing = wanted.Where(f => !(File.Exists(Path.Combine(dir, f.Path))
                                          && (f.Size == null || new FileInfo(Path.Combine(dir, f.Path)).Length == f.Size))).ToList();
        if (missing.Count == 0)
            return;
        progress.AddFiles(missing.Count, missing.All(f => f.Size.HasValue) ? missing.Sum(f => f.Size!.Value) : null);
        var options = new ParallelOptions { MaxDegreeOfParallelism = settings.MaxParallelDownloads, CancellationToken = ct };
        await Parallel.ForEachAsync(missing, options, async (f, token) =>
        {
            var uri = new Uri($"{settings.ModelScopeEndpoint}/api/v1/models/{modelId}/repo?Revision={Uri.EscapeDataString(revision)}&FilePath={Uri.EscapeDataString(f.Path)}");
            string final = Path.Combine(dir, f.Path);
            if (File.Exists(final))
                File.Delete(final); // a stale copy from another revision
            var checksum = f.Sha256 is { Length: 64 } sha ? new Checksum("sha256", sha.ToLowerInvariant()) : null;
            await VerifiedDownload.FetchAsync(http, uri, Path.Combine(temp, f.Path), final, Path.Combine(temp, f.Path + ".lock"),
                f.Size, checksum, n => progress.Bytes(f.Path, n), token);
            progress.FileDone(f.Path);
        });
    }
}
