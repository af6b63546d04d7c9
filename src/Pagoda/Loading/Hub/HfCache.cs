using System.Text.RegularExpressions;

namespace Pagoda.Loading.Hub;

/// <summary>
/// One model's folder in the huggingface_hub cache, laid out exactly as Python writes it so either
/// side reuses the other's downloads:
/// `models--org--name/blobs/&lt;etag&gt;` (file contents), `snapshots/&lt;commit&gt;/&lt;file&gt;` (relative
/// symlinks into blobs), `refs/&lt;revision&gt;` (the commit a branch or tag last resolved to), and
/// locks in `&lt;cache&gt;/.locks/models--org--name/&lt;etag&gt;.lock`.
/// </summary>
internal sealed partial class HfCache(string cacheDir, string repoId)
{
    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHash();

    public string FolderName { get; } = "models--" + repoId.Replace("/", "--");

    public string RepoFolder => Path.Combine(cacheDir, FolderName);

    public static bool IsCommitHash(string revision) => CommitHash().IsMatch(revision);

    public string SnapshotDir(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string LockPath(string etag) => Path.Combine(cacheDir, ".locks", FolderName, etag + ".lock");

    /// <summary>The commit a revision resolves to from the cache alone: itself if a hash, else refs/&lt;revision&gt;.</summary>
    public string? CachedCommit(string revision)
    {
        if (IsCommitHash(revision))
            return revision;
        string refPath = Path.Combine(RepoFolder, "refs", revision);
        if (!File.Exists(refPath))
            return null;
        string commit = File.ReadAllText(refPath).Trim();
        return IsCommitHash(commit) ? commit : null;
    }

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/> (atomically).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit)
            return;
        string refPath = Path.Combine(RepoFolder, "refs", revision);
        Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        if (File.Exists(refPath) && File.ReadAllText(refPath).Trim() == commit)
            return;
        string temp = $"{refPath}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, commit); // no newline, as huggingface_hub writes it
        File.Move(temp, refPath, overwrite: true);
    }

    /// <summary>
    /// Points snapshots/&lt;commit&gt;/&lt;file&gt; at blobs/&lt;etag&gt; with a relative symlink (as
    /// huggingface_hub does), or a copy where symlinks are not allowed. The link is made under a temporary
    /// name and renamed, so the snapshot never shows a half-made entry.
    /// </summary>
    public void Link(string commit, string file, string etag)
    {
        string pointer = Path.Combine(SnapshotDir(commit), file);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        string temp = $"{pointer}.{Guid.NewGuid():N}.tmp";
        string up = string.Concat(Enumerable.Repeat("../", 2 + file.Count(c => c == '/')));
        try
        {
            File.CreateSymbolicLink(temp, $"{up}blobs/{etag}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(BlobPath(etag), temp, overwrite: true);
        }
        File.Move(temp, pointer, overwrite: true);
    }
}
