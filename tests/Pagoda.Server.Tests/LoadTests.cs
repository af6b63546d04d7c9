using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Pagoda.Server.Tests;

/// <summary>1,000 concurrent streams, 30% of whose clients hang up at random points.</summary>
[Collection(ServerCollection.Name)]
public class LoadTests(ServerFixture f, ITestOutputHelper output)
{
    private const int Requests = 1000, MaxTokens = 6;

    private enum Outcome { Completed, Disconnected }

    [Fact]
    public async Task ThousandStreamsWithRandomDisconnectsLeaveNothingBehind()
    {
        int logStart = f.LogText().Length;
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Requests, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = f.BaseAddress, Timeout = TimeSpan.FromMinutes(3),
        };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerFixture.ApiKey);
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, Requests).Select(i => Task.Run(() => One(http, i, new Random(i)))).ToList();
        var outcomes = await Task.WhenAll(tasks);
        int completed = outcomes.Count(o => o == Outcome.Completed), dropped = outcomes.Count(o => o == Outcome.Disconnected);
        output.WriteLine($"{Requests} streams in {clock.Elapsed.TotalSeconds:F1} s: {completed} completed, {dropped} disconnected");
        Assert.InRange(dropped, 200, 400);

        Assert.True(await f.WaitIdle(TimeSpan.FromSeconds(30)), $"not idle: {f.Engine.Stats}");
        Assert.Equal(0, f.Engine.Engine.KvCacheManager.Usage);
        string metrics = await f.Http.GetStringAsync("/metrics");
        Assert.Contains("pagoda:kv_cache_usage_perc{model_name=\"fortune\"} 0.0\n", metrics);
        Assert.Contains("pagoda:num_requests_running{model_name=\"fortune\"} 0.0\n", metrics);
        Assert.Contains("pagoda:num_requests_waiting{model_name=\"fortune\"} 0.0\n", metrics);
        string log = f.LogText()[logStart..];
        Assert.DoesNotContain("ERROR", log);
        Assert.DoesNotContain("Exception", log);
        Assert.Null(f.Engine.Failure);
    }

    private static async Task<Outcome> One(HttpClient http, int i, Random rng)
    {
        bool chat = i % 2 == 0;
        // 30% hang up: some before the answer starts, the others after a random number of events.
        bool drop = rng.NextDouble() < 0.3;
        int dropAfter = drop ? rng.Next(-1, MaxTokens + 2) : int.MaxValue;
        var body = new JsonObject { ["max_tokens"] = MaxTokens, ["ignore_eos"] = true, ["stream"] = true, ["temperature"] = 0.8, ["seed"] = i };
        if (chat)
            body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"Tell me fortune {i % 37}" });
        else
            body["prompt"] = $"Fortune {i % 41}:";
        using var cts = new CancellationTokenSource();
        if (dropAfter < 0)
            cts.CancelAfter(rng.Next(0, 200));
        using var message = new HttpRequestMessage(HttpMethod.Post, chat ? "/v1/chat/completions" : "/v1/completions")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        try
        {
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            Assert.Equal(200, (int)response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            var events = new List<string>();
            while (await reader.ReadLineAsync(cts.Token) is { } line)
            {
                if (line.Length == 0)
                    continue;
                Assert.StartsWith("data: ", line);
                events.Add(line["data: ".Length..]);
                if (drop && events.Count > dropAfter)
                    return Outcome.Disconnected; // disposing the response closes the connection mid-stream
            }
            if (drop)
                return Outcome.Disconnected; // it finished before the client got round to hanging up
            CheckStream(events, chat);
            return Outcome.Completed;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return Outcome.Disconnected;
        }
    }

    // Well-formed: JSON chunks of one id, exactly one finish_reason ("length"), MaxTokens of content, then [DONE].
    private static void CheckStream(List<string> events, bool chat)
    {
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        Assert.Single(chunks.Select(c => c["id"]!.GetValue<string>()).Distinct());
        Assert.All(chunks, c => Assert.Null(c["error"]));
        var choices = chunks.SelectMany(c => c["choices"]!.AsArray()).ToList();
        Assert.Equal(["length"], choices.Select(c => c!["finish_reason"]?.GetValue<string>()).OfType<string>());
        int pieces = chat
            ? choices.Count(c => c!["delta"]!["content"] is { } t && t.GetValue<string>().Length > 0)
            : choices.Count(c => c!["text"]!.GetValue<string>().Length > 0);
        Assert.InRange(pieces, 1, MaxTokens);
    }
}
