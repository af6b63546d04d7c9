using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Tests.Hub;

public sealed partial class FakeHub
{
    private Response Route(FakeRequest r, string target)
    {
        string path = Uri.UnescapeDataString(target.Split('?')[0]);
        var query = target.Contains('?')
            ? target[(target.IndexOf('?') + 1)..].Split('&').Select(p => p.Split('=', 2))
                .ToDictionary(p => p[0], p => Uri.UnescapeDataString(p.ElementAtOrDefault(1) ?? ""))
            : new Dictionary<string, string>();

        if (path.StartsWith("/cdn-lfs/", StringComparison.Ordinal))
        {
            string sha = path["/cdn-lfs/".Length..];
            foreach (var c in Repos.Values.SelectMany(x => x.Commits.Values))
            {
                foreach (var (file, bytes) in c.Files)
                {
                    if (Sha256(bytes) == sha)
                        return Response.File(file, bytes);
                }
            }
            return Response.Error(404, null);
        }
        if (path.StartsWith("/api/v1/models/", StringComparison.Ordinal))
            return ModelScope(r, path["/api/v1/models/".Length..], query);
        if (path.StartsWith("/api/models/", StringComparison.Ordinal) && path.IndexOf("/revision/", StringComparison.Ordinal) is int at and > 0)
        {
            string repoId = path["/api/models/".Length..at];
            var (commit, error) = Find(r, repoId, path[(at + "/revision/".Length)..]);
            if (error != null)
                return error;
            return Json(new JsonObject
            {
                ["id"] = repoId,
                ["sha"] = commit!.Sha,
                ["siblings"] = new JsonArray(commit.Files.Keys.Select(f => (JsonNode)new JsonObject { ["rfilename"] = f }).ToArray()),
            });
        }
        int resolve = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            string repoId = path[1..resolve];
            string rest = path[(resolve + "/resolve/".Length)..];
            int slash = rest.IndexOf('/');
            var (commit, error) = Find(r, repoId, rest[..slash]);
            if (error != null)
                return error;
            string file = rest[(slash + 1)..];
            if (!commit!.Files.TryGetValue(file, out var bytes))
                return Response.Error(404, "EntryNotFound");
            var headers = new List<(string, string)> { ("X-Repo-Commit", commit.Sha) };
            if (!IsLfs(file))
                return Response.File(file, bytes) with { Headers = [.. headers, ("ETag", $"\"{GitSha1(bytes)}\"")] };
            // LFS: the Hub answers with a redirect to its CDN and describes the object in X-Linked-*.
            headers.AddRange([("ETag", "\"0123456789abcdef0123456789abcdef01234567\""), ("X-Linked-Etag", $"\"{Sha256(bytes)}\""),
                ("X-Linked-Size", bytes.Length.ToString()), ("Location", $"{Url.Replace("127.0.0.1", "localhost")}/cdn-lfs/{Sha256(bytes)}")]);
            return new Response(302, headers, [], null);
        }
        return Response.Error(404, null);
    }

    private (FakeCommit? Commit, Response? Error) Find(FakeRequest r, string repoId, string revision)
    {
        if (!Repos.TryGetValue(repoId, out var repo))
            return (null, Response.Error(r.Authorization == null ? 401 : 404, "RepoNotFound"));
        if (repo.RequiredToken != null && r.Authorization != "Bearer " + repo.RequiredToken)
            return (null, repo.Gated ? Response.Error(403, "GatedRepo") : Response.Error(401, "RepoNotFound"));
        string sha = repo.Refs.GetValueOrDefault(revision, revision);
        return repo.Commits.TryGetValue(sha, out var commit) ? (commit, null) : (null, Response.Error(404, "RevisionNotFound"));
    }

    private Response ModelScope(FakeRequest r, string rest, Dictionary<string, string> query)
    {
        bool listing = rest.EndsWith("/repo/files", StringComparison.Ordinal);
        string repoId = listing ? rest[..^"/repo/files".Length] : rest.EndsWith("/repo", StringComparison.Ordinal) ? rest[..^"/repo".Length] : "";
        if (!Repos.TryGetValue(repoId, out var repo)
            || !repo.Commits.TryGetValue(repo.Refs.GetValueOrDefault(query.GetValueOrDefault("Revision", "master"), "?"), out var commit))
        {
            return new Response(404, [], Encoding.UTF8.GetBytes("{\"Code\":10010205001,\"Message\":\"model or revision not found\",\"Success\":false}"), "application/json");
        }
        if (listing)
        {
            var files = commit.Files.Select(f => (JsonNode)new JsonObject
            {
                ["Name"] = f.Key, ["Path"] = f.Key, ["Type"] = "blob", ["Size"] = f.Value.Length,
                ["Sha256"] = Sha256(f.Value), ["Revision"] = commit.Sha, ["IsLFS"] = IsLfs(f.Key),
            });
            return Json(new JsonObject
            {
                ["Code"] = 200, ["Data"] = new JsonObject { ["Files"] = new JsonArray(files.ToArray()) }, ["Message"] = "success", ["Success"] = true,
            });
        }
        return commit.Files.TryGetValue(query.GetValueOrDefault("FilePath", ""), out var bytes)
            ? Response.File(query["FilePath"], bytes) : Response.Error(404, null);
    }

    private sealed record Response(int Status, List<(string Name, string Value)> Headers, byte[] Body, string? ContentType, string? FileName = null)
    {
        public static Response File(string name, byte[] bytes) => new(200, [], bytes, "application/octet-stream", name);

        public static Response Error(int status, string? code) =>
            new(status, code == null ? [] : [("X-Error-Code", code), ("X-Error-Message", code + " (fake hub)")], Encoding.UTF8.GetBytes("error"), "text/plain");

        public async Task WriteTo(NetworkStream stream, FakeRequest request, FakeHub hub)
        {
            byte[] body = Body;
            int status = Status;
            var headers = new List<(string, string)>(Headers);
            int? cut = null;
            if (FileName != null && request.Method == "GET")
            {
                if (hub.Corrupt.ContainsKey(FileName))
                {
                    body = (byte[])body.Clone();
                    body[body.Length / 2] ^= 0xFF;
                }
                if (hub.CutNextDownload.TryRemove(FileName, out int n))
                    cut = n;
                if (request.Range is { } range && range.StartsWith("bytes=", StringComparison.Ordinal))
                {
                    long from = long.Parse(range["bytes=".Length..].TrimEnd('-'));
                    if (from >= body.Length)
                    {
                        status = 416;
                        from = body.Length;
                    }
                    headers.Add(("Content-Range", $"bytes {from}-{body.Length - 1}/{body.Length}"));
                    body = body[(int)from..];
                    status = status == 416 ? 416 : 206;
                }
                await Task.Delay(hub.BodyDelay);
            }
            var sb = new StringBuilder($"HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {body.Length}\r\n");
            if (ContentType != null)
                sb.Append($"Content-Type: {ContentType}\r\n");
            foreach (var (name, value) in headers)
                sb.Append($"{name}: {value}\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.Append("\r\n").ToString()));
            if (request.Method != "HEAD")
                await stream.WriteAsync(cut is int c ? body.AsMemory(0, Math.Min(c, body.Length)) : body);
            await stream.FlushAsync();
        }
    }
}
