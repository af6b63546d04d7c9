using System.Text.RegularExpressions;

namespace Pagoda.Loading.Hub;

/// <summary>
/// Turns a --model value into a local folder: an existing folder is used as is; otherwise a repo id is
/// looked up in the cache and, if not complete there, downloaded from the Hugging Face Hub (or
/// ModelScope when <see cref="HubSettings.UseModelScope"/>). A complete cached snapshot is used without
/// contacting the hub, so a second run makes no request; pass a commit hash as the revision to pin one.
/// </summary>
public static partial class ModelResolver
{
    // huggingface_hub's validate_repo_id: [namespace/]name of word characters, '-' and '.', at most 96.
    [GeneratedRegex(@"^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$")]
    private static partial Regex RepoIdPattern();

    /// <summary>Whether <paramref name="model"/> is shaped like a hub repo id rather than a path.</summary>
    public static bool IsRepoId(string model) =>
        model.Length <= 96 && RepoIdPattern().IsMatch(model) && !model.Contains("--") && !model.Contains("..")
        && !model.EndsWith(".git", StringComparison.Ordinal) && !model.StartsWith('.');

    /// <summary>Resolves <paramref name="model"/> to a folder, downloading if needed (blocking).</summary>
    public static string Resolve(string model, string? revision, string? downloadDir, HubSettings settings,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default) =>
        ResolveAsync(model, revision, downloadDir, settings, progress, ct).GetAwaiter().GetResult();

    /// <summary>Resolves <paramref name="model"/> to a folder: local path, then cache, then download.</summary>
    public static async Task<string> ResolveAsync(string model, string? revision, string? downloadDir, HubSettings settings,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        string full = Path.GetFullPath(model);
        if (Directory.Exists(full))
            return full;
        if (File.Exists(full))
            throw new ModelLoadException(model, "is a file; expected a model folder holding config.json");
        if (!IsRepoId(model))
            throw new ModelLoadException(model, "model folder not found (and not a repo id such as Qwen/Qwen2.5-1.5B-Instruct)");

        var tracker = new ProgressTracker(model, progress);
        if (settings.UseModelScope)
        {
            string root = downloadDir ?? Path.Combine(settings.ModelScopeCacheDir, "models");
            return await new ModelScopeDownloader(settings, tracker).ResolveAsync(model, revision, root, ct);
        }
        return await new HfDownloader(settings, tracker).ResolveAsync(model, revision ?? "main", downloadDir ?? settings.CacheDir, ct);
    }
}
