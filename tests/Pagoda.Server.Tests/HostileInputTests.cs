using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Pagoda.Server.Tests;

/// <summary>
/// Hostile and malformed input on every route: a fixed table and a bounded, seeded JSON mutation fuzzer.
/// Every answer must be a 4xx in OpenAI's error shape (the fuzzer also allows 2xx), never a 5xx, and the
/// server must go on serving with its KV pool empty afterwards.
/// </summary>
[Collection(ServerCollection.Name)]
public class HostileInputTests(ServerFixture f, ITestOutputHelper output)
{
    private static readonly string[] FuzzRoutes = ["/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize", "/invocations"];

    private static HttpRequestMessage Message(HostileRequest r)
    {
        var m = new HttpRequestMessage(new HttpMethod(r.Method), r.Path);
        if (r.Body != null)
            m.Content = new ByteArrayContent(r.Body) { Headers = { { "Content-Type", r.ContentType } } };
        foreach (var (name, value) in r.Headers ?? [])
            m.Headers.TryAddWithoutValidation(name, value);
        return m;
    }

    /// <summary>Sends one request; returns its status and a failure description, or null when the answer is acceptable.</summary>
    private async Task<(int Status, string? Problem)> Send(HostileRequest r, bool allowSuccess)
    {
        using var message = Message(r);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        HttpResponseMessage response;
        string text;
        try
        {
            response = await f.Http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            text = await response.Content.ReadAsStringAsync(timeout.Token);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            // Kestrel may close the connection on a request it refuses at the transport level (oversized headers).
            return r.TransportLevel && e is HttpRequestException ? (431, null) : (0, $"{r}: {e.GetType().Name}: {e.Message}");
        }
        using (response)
        {
            int status = (int)response.StatusCode;
            if (status >= 500)
                return (status, $"{r}: {status} {Clip(text)}");
            if (status < 400)
                return allowSuccess ? (status, null) : (status, $"{r}: accepted with {status} {Clip(text)}");
            // Header limits are enforced by Kestrel before any middleware runs: a bare 431 / 400, no body.
            if (r.TransportLevel && text.Length == 0)
                return (status, null);
            try
            {
                var e = JsonNode.Parse(text)!["error"]!.AsObject();
                if (e["code"]!.GetValue<int>() != status || e["message"]!.GetValue<string>().Length == 0 || e["type"] is null || !e.ContainsKey("param"))
                    return (status, $"{r}: {status} body not in OpenAI's shape: {Clip(text)}");
            }
            catch (Exception ex) when (ex is System.Text.Json.JsonException or NullReferenceException or InvalidOperationException)
            {
                return (status, $"{r}: {status} body not in OpenAI's shape: {Clip(text)}");
            }
            return (status, null);
        }
    }

    private static string Clip(string s) => s.Length <= 300 ? s : s[..300] + "...";

    [Fact]
    public async Task EveryHostileRequestInTheTableIsAnOpenAi4xx()
    {
        var table = HostileRequests.All();
        Assert.True(table.Count >= 200, $"only {table.Count} hostile requests");
        foreach (string route in HostileRequests.PostRoutes)
            Assert.True(table.Count(r => r.Path == route) >= 20, route);

        var problems = new List<string>();
        var statuses = new Dictionary<int, int>();
        // A few at a time: the table stays quick without turning into a load test.
        foreach (var chunk in table.Chunk(4))
        {
            foreach (var (status, problem) in await Task.WhenAll(chunk.Select(r => Send(r, allowSuccess: false))))
            {
                statuses[status] = statuses.GetValueOrDefault(status) + 1;
                if (problem != null)
                    problems.Add(problem);
            }
        }
        output.WriteLine($"{table.Count} hostile requests: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key} x{s.Value}")));
        Assert.True(problems.Count == 0, $"{problems.Count} of {table.Count} failed:\n" + string.Join("\n", problems));
        await AssertStillServing();
    }

    [Fact]
    public async Task RandomJsonMutationsNeverGiveA5xx()
    {
        var rng = new Random(9);
        var clock = Stopwatch.StartNew();
        var problems = new List<string>();
        int sent = 0;
        // Bounded in count and in time, whichever comes first.
        for (; sent < 400 && clock.Elapsed < TimeSpan.FromSeconds(60); sent += 4)
        {
            var batch = Enumerable.Range(0, 4).Select(_ => Mutant(rng)).ToList();
            foreach (var (_, problem) in await Task.WhenAll(batch.Select(r => Send(r, allowSuccess: true))))
            {
                if (problem != null)
                    problems.Add(problem);
            }
        }
        output.WriteLine($"{sent} mutated requests in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(problems.Count == 0, $"{problems.Count} of {sent} failed:\n" + string.Join("\n", problems));
        await AssertStillServing();
    }

    private async Task AssertStillServing()
    {
        Assert.True(await f.WaitIdle(TimeSpan.FromSeconds(20)), $"engine not idle: {f.Engine.Stats}");
        Assert.Equal(0, f.Engine.Engine.KvCacheManager.Usage);
        var (status, body) = await f.PostJson("/v1/completions", new JsonObject { ["prompt"] = "Hello", ["max_tokens"] = 3, ["ignore_eos"] = true });
        Assert.Equal(200, status);
        Assert.Equal(3, body!["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Null(f.Engine.Failure);
    }

    private static HostileRequest Mutant(Random rng)
    {
        string path = FuzzRoutes[rng.Next(FuzzRoutes.Length)];
        var body = HostileRequests.Seed(path, rng);
        int edits = 1 + rng.Next(3);
        for (int i = 0; i < edits; i++)
            Mutate(body, rng, 0);
        // Generation stays short whatever else was mutated, so the fuzzer tests parsing, not patience.
        if (body["max_tokens"] is not null || path.Contains("completions") || path == "/invocations")
            body["max_tokens"] = 3;
        byte[] bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        if (rng.Next(8) == 0)
            bytes = ByteLevel(bytes, rng);
        return new HostileRequest($"fuzz {Encoding.UTF8.GetString(bytes)[..Math.Min(bytes.Length, 200)]}", "POST", path, bytes);
    }

    private static void Mutate(JsonNode node, Random rng, int depth)
    {
        switch (node)
        {
            case JsonObject o when o.Count > 0 && depth < 3 && rng.Next(3) == 0:
                var child = o.ElementAt(rng.Next(o.Count));
                if (child.Value is JsonObject or JsonArray)
                    Mutate(child.Value, rng, depth + 1);
                else
                    o[child.Key] = RandomValue(rng, 0);
                break;
            case JsonObject o:
                string[] keys = [.. o.Select(p => p.Key), "n", "stop", "prompt", "messages", "input", "tokens", "logprobs", "prompt_logprobs", "top_k", "tools",
                    "stream_options", "response_format", "model", "seed", "role", "content", "type", "x-unknown"];
                string key = keys[rng.Next(keys.Length)];
                if (rng.Next(5) == 0)
                    o.Remove(key);
                else
                    o[key] = RandomValue(rng, 0);
                break;
            case JsonArray a when a.Count > 0 && rng.Next(2) == 0:
                int at = rng.Next(a.Count);
                if (a[at] is JsonObject or JsonArray && depth < 3)
                    Mutate(a[at]!, rng, depth + 1);
                else
                    a[at] = RandomValue(rng, 0);
                break;
            case JsonArray a:
                a.Add(RandomValue(rng, 0));
                break;
        }
    }

    private static JsonNode? RandomValue(Random rng, int depth) => rng.Next(depth < 2 ? 16 : 12) switch
    {
        0 => null,
        1 => rng.Next(2) == 0,
        2 => rng.Next(-3, 5),
        3 => (long)rng.NextInt64(long.MinValue, long.MaxValue),
        4 => rng.NextDouble() * Math.Pow(10, rng.Next(-5, 300)) * (rng.Next(2) == 0 ? -1 : 1),
        5 => "",
        6 => new string((char)rng.Next(32, 0xD7FF), rng.Next(1, 20)),
        7 => rng.Next(2) == 0 ? "user" : "text",
        8 => rng.Next(151_000, 160_000),
        9 => "\u0000\uFFFF",
        10 => int.MaxValue,
        11 => -0.0,
        12 => new JsonArray(RandomValue(rng, depth + 1), RandomValue(rng, depth + 1)),
        13 => new JsonArray(),
        14 => new JsonObject(),
        _ => new JsonObject { ["role"] = RandomValue(rng, depth + 1), ["content"] = RandomValue(rng, depth + 1), ["type"] = "text" },
    };

    // Damage the serialized bytes: truncate, flip a byte, or splice in an invalid UTF-8 sequence.
    private static byte[] ByteLevel(byte[] bytes, Random rng)
    {
        var copy = bytes.ToArray();
        switch (rng.Next(3))
        {
            case 0:
                return copy[..rng.Next(copy.Length)];
            case 1:
                copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
                return copy;
            default:
                int at = rng.Next(copy.Length);
                return [.. copy[..at], 0xF0, 0x28, 0x8C, 0x28, .. copy[at..]];
        }
    }
}
