using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Server.Tests;

/// <summary>Transport limits and CORS: oversized bodies, origins that were not allowed.</summary>
[Collection(ServerCollection.Name)]
public class LimitsTests(ServerFixture f)
{
    /// <summary>Sends raw bytes and reads the status line, headers and body of the answer (HttpClient hides an early answer).</summary>
    private Task<(int Status, string Headers, string Body)> Raw(string head, byte[] body) =>
        Raw(head, (stream, ct) => stream.WriteAsync(body, ct).AsTask());

    /// <summary>
    /// Sends the head, then lets <paramref name="writeBody"/> write while the answer is read: a server that
    /// answers early and closes makes the rest of the body fail to send, which is expected, not an error.
    /// </summary>
    private async Task<(int Status, string Headers, string Body)> Raw(string head, Func<Stream, CancellationToken, Task> writeBody)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(f.BaseAddress.Host, f.BaseAddress.Port);
        var stream = tcp.GetStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token);
        var writing = Task.Run(async () =>
        {
            try
            {
                await writeBody(stream, timeout.Token);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
            }
        });
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            int n;
            try
            {
                n = await stream.ReadAsync(buffer, timeout.Token);
            }
            catch (IOException)
            {
                break; // the server may reset the connection once it has answered
            }
            if (n == 0)
                break;
            received.Write(buffer, 0, n);
            string text = Encoding.UTF8.GetString(received.ToArray());
            int split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (split > 0 && (text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal) ||
                              System.Text.RegularExpressions.Regex.Match(text[..split], @"(?i)content-length: (\d+)") is { Success: true } m &&
                              text.Length - split - 4 >= int.Parse(m.Groups[1].Value)))
                break;
        }
        tcp.Close();
        await writing;
        string all = Encoding.UTF8.GetString(received.ToArray());
        int at = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        // The JSON may come chunked: the object is what lies between the first '{' and the last '}'.
        string rest = all[(at + 4)..];
        int open = rest.IndexOf('{'), close = rest.LastIndexOf('}');
        return (int.Parse(all.Split(' ')[1]), all[..at], open >= 0 && close > open ? rest[open..(close + 1)] : rest);
    }

    [Theory]
    [InlineData("/v1/completions")]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/embeddings")]
    public async Task BodyOverTheLimitIs413BeforeItIsRead(string path)
    {
        long declared = 40L << 20;
        var (status, _, body) = await Raw(
            $"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ServerFixture.ApiKey}\r\nContent-Type: application/json\r\n" +
            $"Content-Length: {declared}\r\n\r\n", Encoding.ASCII.GetBytes("{\"prompt\": \""));
        Assert.Equal(413, status);
        var error = JsonNode.Parse(body)!["error"]!;
        Assert.Equal(413, error["code"]!.GetValue<int>());
        Assert.Contains("too large", error["message"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);

        // A body just under the limit is read (and refused for what it says, not for its size).
        var (s2, _) = await f.PostJson("/tokenize", new JsonObject { ["prompt"] = new string('a', 7 << 20), ["model"] = "nope" });
        Assert.Equal(404, s2);
    }

    private static string ChunkedHead(string path) =>
        $"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ServerFixture.ApiKey}\r\nContent-Type: application/json\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n";

    private static async Task WriteChunk(Stream stream, string text, CancellationToken ct)
    {
        byte[] data = Encoding.UTF8.GetBytes(text);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{data.Length:x}\r\n"), ct);
        await stream.WriteAsync(data, ct);
        await stream.WriteAsync("\r\n"u8.ToArray(), ct);
    }

    [Theory]
    [InlineData("/v1/completions")]
    [InlineData("/v1/chat/completions")]
    [InlineData("/tokenize")]
    public async Task ChunkedBodyOverTheLimitIs413AndTheServerGoesOn(string path)
    {
        int logStart = f.LogText().Length;
        // No Content-Length: Kestrel can only find out while reading, after the handler has started.
        var (status, headers, body) = await Raw(ChunkedHead(path), async (stream, ct) =>
        {
            await WriteChunk(stream, "{\"model\": \"fortune\", \"messages\": [], \"prompt\": \"", ct);
            string piece = new('a', 64 << 10);
            for (int i = 0; i < 9 * 16; i++) // 9 MiB against the 8 MiB limit
                await WriteChunk(stream, piece, ct);
            await WriteChunk(stream, "\"}", ct);
            await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), ct);
        });
        Assert.True(status == 413, $"status {status}: {headers}\n{body}");
        var error = JsonNode.Parse(body)!["error"]!;
        Assert.Equal(413, error["code"]!.GetValue<int>());
        Assert.Equal("RequestTooLargeError", error["type"]!.GetValue<string>());
        Assert.Contains("too large", error["message"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("ERROR", f.LogText()[logStart..]); // a 5xx would be logged with its stack

        var (after, answer) = await f.PostJson("/v1/completions", new JsonObject { ["model"] = "fortune", ["prompt"] = "Hi", ["max_tokens"] = 2, ["ignore_eos"] = true });
        Assert.Equal(200, after);
        Assert.Equal(2, answer!["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task SlowlyDribbledChunkedBodyUnderTheLimitIsServed()
    {
        string json = new JsonObject { ["model"] = "fortune", ["prompt"] = "Once upon a time there was a fortune cookie", ["max_tokens"] = 3, ["ignore_eos"] = true }.ToJsonString();
        // 12 chunks 200 ms apart: slow, yet within Kestrel's minimum data rate grace period (5 s).
        var (status, headers, body) = await Raw(ChunkedHead("/v1/completions"), async (stream, ct) =>
        {
            int size = (json.Length + 11) / 12;
            for (int at = 0; at < json.Length; at += size)
            {
                await WriteChunk(stream, json[at..Math.Min(json.Length, at + size)], ct);
                await stream.FlushAsync(ct);
                await Task.Delay(200, ct);
            }
            await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), ct);
        });
        Assert.True(status == 200, $"status {status}: {headers}\n{body}");
        var answer = JsonNode.Parse(body)!;
        Assert.Equal(3, answer["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal("text_completion", answer["object"]!.GetValue<string>());
    }

    [Fact]
    public async Task CorsIsDeniedToOriginsNotAllowed()
    {
        using var anonymous = new HttpClient { BaseAddress = f.BaseAddress };
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions");
        preflight.Headers.Add("Origin", "https://evil.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        using var answer = await anonymous.SendAsync(preflight);
        Assert.False(answer.Headers.Contains("Access-Control-Allow-Origin"));

        using var simple = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        simple.Headers.Add("Origin", "https://evil.example");
        simple.Headers.Authorization = new("Bearer", ServerFixture.ApiKey);
        using var get = await anonymous.SendAsync(simple);
        Assert.False(get.Headers.Contains("Access-Control-Allow-Origin"));
    }
}
