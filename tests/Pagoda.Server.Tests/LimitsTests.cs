using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Server.Tests;

/// <summary>Transport limits and CORS: oversized bodies, origins that were not allowed.</summary>
[Collection(ServerCollection.Name)]
public class LimitsTests(ServerFixture f)
{
    /// <summary>Sends raw bytes and reads the status line, headers and body of the answer (HttpClient hides an early answer).</summary>
    private async Task<(int Status, string Headers, string Body)> Raw(string head, byte[] body)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(f.BaseAddress.Host, f.BaseAddress.Port);
        var stream = tcp.GetStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token);
        await stream.WriteAsync(body, timeout.Token);
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
