using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Tests.Hub;

/// <summary>One commit of a fake repo: file name → bytes.</summary>
public sealed class FakeCommit(string sha, Dictionary<string, byte[]> files)
{
    public string Sha { get; } = sha;
    public Dictionary<string, byte[]> Files { get; } = files;
}

/// <summary>A fake repo: commits, refs (branches/tags → commit), and who may read it.</summary>
public sealed class FakeRepo
{
    public Dictionary<string, FakeCommit> Commits { get; } = new();
    public Dictionary<string, string> Refs { get; } = new();
    public string? RequiredToken { get; init; }
    public bool Gated { get; init; }

    public FakeCommit Add(Dictionary<string, byte[]> files, params string[] refs)
    {
        var c = new FakeCommit(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20)), files);
        Commits[c.Sha] = c;
        foreach (string r in refs)
            Refs[r] = c.Sha;
        return c;
    }
}

/// <summary>A request the fake hub received.</summary>
public sealed record FakeRequest(string Method, string Path, string? Range, string? Authorization);

/// <summary>
/// A Hugging Face Hub and ModelScope stand-in on 127.0.0.1 speaking the real endpoints and headers:
/// /api/models/{id}/revision/{rev}, HEAD/GET /{id}/resolve/{rev}/{file} (ETag, X-Repo-Commit, and for LFS
/// files X-Linked-Etag/X-Linked-Size with a 302 to localhost/cdn-lfs/{sha256}, another host as the real CDN is),
/// Range requests, X-Error-Code
/// errors; and ModelScope's /api/v1/models/{id}/repo/files and /repo?FilePath=. One request per connection.
/// </summary>
public sealed partial class FakeHub : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public FakeHub()
    {
        _listener.Start();
        Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _loop = Task.Run(AcceptLoop);
    }

    public string Url { get; }

    public ConcurrentDictionary<string, FakeRepo> Repos { get; } = new();

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>Serve only this many bytes of a file's next download, then drop the connection.</summary>
    public ConcurrentDictionary<string, int> CutNextDownload { get; } = new();

    /// <summary>Files whose downloads are served with one byte flipped.</summary>
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new();

    /// <summary>Answer every request with this status (e.g. 503) while set.</summary>
    public int? FailWith { get; set; }

    /// <summary>Delay before each download body, so parallel clients overlap.</summary>
    public TimeSpan BodyDelay { get; set; }

    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal);

    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    public static string GitSha1(byte[] b) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {b.Length}\0"), .. b]));

    public static string Etag(string file, byte[] b) => IsLfs(file) ? Sha256(b) : GitSha1(b);

    /// <summary>Requests whose path starts with <paramref name="prefix"/>.</summary>
    public List<FakeRequest> RequestsTo(string prefix) => Requests.Where(r => r.Path.StartsWith(prefix, StringComparison.Ordinal)).ToList();

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        await Handle(client.GetStream());
                    }
                    catch (IOException)
                    {
                    }
                }
            });
        }
    }

    private async Task Handle(NetworkStream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one) == 0)
                return;
            head.Append((char)one[0]);
        }
        var lines = head.ToString().Split("\r\n");
        var parts = lines[0].Split(' ');
        var headers = lines.Skip(1).Where(l => l.Contains(':'))
            .ToDictionary(l => l[..l.IndexOf(':')].Trim().ToLowerInvariant(), l => l[(l.IndexOf(':') + 1)..].Trim());
        var request = new FakeRequest(parts[0], Uri.UnescapeDataString(parts[1].Split('?')[0]) + Query(parts[1]),
            headers.GetValueOrDefault("range"), headers.GetValueOrDefault("authorization"));
        Requests.Enqueue(request);
        var response = FailWith is int code ? Response.Error(code, null) : Route(request, parts[1]);
        await response.WriteTo(stream, request, this);
    }

    private static string Query(string target) => target.Contains('?') ? "?" + Uri.UnescapeDataString(target[(target.IndexOf('?') + 1)..]) : "";

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    /// <summary>A JSON body.</summary>
    private static Response Json(JsonNode body) => new(200, [], Encoding.UTF8.GetBytes(body.ToJsonString()), "application/json");
}
