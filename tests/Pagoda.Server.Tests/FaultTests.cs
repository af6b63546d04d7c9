using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.Execution;

namespace Pagoda.Server.Tests;

/// <summary>
/// A server whose engine has a test fault hook (it throws for request ids naming a fault site), the smallest
/// KV pool that still holds one full context (so concurrent long requests are preempted), and a bounded
/// waiting queue.
/// </summary>
public sealed class FaultFixture : IAsyncLifetime
{
    public AsyncLLMEngine Engine { get; private set; } = null!;
    public PagodaServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public StringWriter Log { get; } = new();

    private TextWriter? _logWriter;

    /// <summary>The log so far, read under the writers' lock.</summary>
    public string LogText()
    {
        lock (_logWriter ?? (object)Log)
            return Log.ToString();
    }

    private static void Hook(FaultSite site, string requestId)
    {
        if (requestId.Contains($"fault-{site}", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"injected {site} fault");
    }

    public async Task InitializeAsync()
    {
        Engine = new AsyncLLMEngine(new LLMEngine(new EngineArgs
        {
            Model = Paths.FortuneChat, NumKvBlocks = 128, GenerationConfig = "vllm", MaxNumSeqs = 8, FaultHook = Hook,
        }));
        Server = PagodaServer.Create(new ServerOptions { Port = 0, MaxWaitingRequests = 8 }, Engine, _logWriter = TextWriter.Synchronized(Log));
        await Server.StartAsync();
        Http = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromSeconds(120) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.StopAsync();
        await Server.DisposeAsync();
        Engine.Dispose();
    }
}

/// <summary>Per-request fault isolation, preemption under a full KV pool, and load shedding with 503.</summary>
public class FaultTests(FaultFixture f) : IClassFixture<FaultFixture>
{
    private async Task<(int Status, string Body, HttpResponseMessage Response)> Post(string path, JsonObject body, string? requestId = null)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        if (requestId != null)
            message.Headers.Add("X-Request-Id", requestId);
        var response = await f.Http.SendAsync(message);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private async Task WaitIdle()
    {
        for (int i = 0; i < 500 && (f.Engine.Stats.NumRunning > 0 || f.Engine.Stats.NumWaiting > 0 || f.Engine.Stats.KvCacheUsage > 0); i++)
            await Task.Delay(20);
        Assert.Equal(0, f.Engine.Stats.NumRunning);
        Assert.Equal(0, f.Engine.Engine.KvCacheManager.Usage);
    }

    [Theory]
    [InlineData("Step", false)]
    [InlineData("Sampler", false)]
    [InlineData("Detokenizer", false)]
    [InlineData("Sampler", true)]
    [InlineData("Detokenizer", true)]
    public async Task AFaultFailsOnlyItsOwnRequest(string site, bool stream)
    {
        JsonObject Body(string prompt, int tokens) => new()
        {
            ["prompt"] = prompt, ["max_tokens"] = tokens, ["ignore_eos"] = true, ["temperature"] = 0, ["stream"] = stream,
        };
        // Healthy requests run alongside; the faulty one joins while they are mid-generation. They are long
        // enough (300 tokens) that a poll cannot miss them running; at 40 tokens all four could finish between
        // two polls on a fast machine, and the loop waited forever.
        const int healthyTokens = 300;
        var healthy = Enumerable.Range(0, 4).Select(i => Post("/v1/completions", Body($"Healthy {i}", healthyTokens))).ToList();
        // Bounded by time, not polls: on a busy machine (the CI runs both test projects at once) 2,000 polls of 5 ms
        // once ran out before the first step. A healthy request that ends first says how.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (f.Engine.Stats.NumRunning == 0)
        {
            if (healthy.FirstOrDefault(h => h.IsCompleted) is { } done)
            {
                var (endStatus, endBody, _) = await done;
                Assert.Fail($"a healthy request ended before any was seen running: {endStatus} {endBody[..Math.Min(200, endBody.Length)]}");
            }
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), "the healthy requests were never seen running");
            await Task.Delay(5);
        }
        var (status, text, response) = await Post("/v1/completions", Body("Doomed", 30), $"fault-{site}-{stream}");
        if (stream)
        {
            // The 200 was already sent: the failure arrives as an error event, then [DONE].
            Assert.Equal(200, status);
            Assert.EndsWith("data: [DONE]\n\n", text);
            var error = JsonNode.Parse(text.Split("\n\n")[^3]["data: ".Length..])!["error"]!;
            Assert.Equal(500, error["code"]!.GetValue<int>());
            Assert.Contains($"injected {site} fault", error["message"]!.GetValue<string>());
        }
        else
        {
            Assert.Equal(500, status);
            var error = JsonNode.Parse(text)!["error"]!;
            Assert.Equal("InternalServerError", error["type"]!.GetValue<string>());
            Assert.Contains($"injected {site} fault", error["message"]!.GetValue<string>());
        }
        response.Dispose();

        foreach (var h in healthy)
        {
            var (s, body, r) = await h;
            r.Dispose();
            Assert.Equal(200, s);
            if (!stream)
                Assert.Equal(healthyTokens, JsonNode.Parse(body)!["usage"]!["completion_tokens"]!.GetValue<int>());
            else
                Assert.DoesNotContain("\"error\"", body);
        }
        await WaitIdle();
        Assert.Null(f.Engine.Failure);
        Assert.Equal(200, (int)(await f.Http.GetAsync("/health")).StatusCode);
        var (after, _, ra) = await Post("/v1/completions", Body("Still serving", 3));
        ra.Dispose();
        Assert.Equal(200, after);
        Assert.Contains("injected", f.LogText()); // a 500 is logged, with its cause...
        Assert.DoesNotContain("Doomed", f.LogText()); // ...but not the prompt
    }

    [Fact]
    public async Task AFullKvPoolPreemptsAndGreedyOutputsStayTheSame()
    {
        JsonObject Body(int i) => new() { ["prompt"] = $"Story number {i}:", ["max_tokens"] = 300, ["ignore_eos"] = true, ["temperature"] = 0 };
        var alone = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            var (s, body, r) = await Post("/v1/completions", Body(i));
            r.Dispose();
            Assert.Equal(200, s);
            alone.Add(JsonNode.Parse(body)!["choices"]![0]!["text"]!.GetValue<string>());
        }
        long preemptions = f.Engine.Stats.NumPreemptions;
        // Eight requests of ~305 tokens need ~160 blocks; the pool has 128, so some are preempted and recomputed.
        var together = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Post("/v1/completions", Body(i % 2))));
        Assert.True(f.Engine.Stats.NumPreemptions > preemptions, "no preemption happened");
        for (int i = 0; i < together.Length; i++)
        {
            together[i].Response.Dispose();
            Assert.Equal(200, together[i].Status);
            Assert.Equal(alone[i % 2], JsonNode.Parse(together[i].Body)!["choices"]![0]!["text"]!.GetValue<string>());
        }
        await WaitIdle();
    }

    [Fact]
    public async Task BeyondMaxWaitingRequestsIs503WithRetryAfter()
    {
        // 8 may wait: of 40 long requests sent together, some must be turned away.
        var body = new JsonObject { ["prompt"] = "Queue", ["max_tokens"] = 60, ["ignore_eos"] = true };
        var results = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Post("/v1/completions", (JsonObject)body.DeepClone())));
        var rejected = results.Where(r => r.Status == 503).ToList();
        Assert.NotEmpty(rejected);
        Assert.All(results, r => Assert.True(r.Status is 200 or 503, $"{r.Status} {r.Body}"));
        // At least the waiting allowance is served (requests still being added count as waiting).
        Assert.True(results.Count(r => r.Status == 200) >= 8, $"only {results.Count(r => r.Status == 200)} served");
        var first = rejected[0];
        Assert.Equal(TimeSpan.FromSeconds(1), first.Response.Headers.RetryAfter!.Delta);
        var error = JsonNode.Parse(first.Body)!["error"]!;
        Assert.Equal("ServiceUnavailableError", error["type"]!.GetValue<string>());
        Assert.Equal(503, error["code"]!.GetValue<int>());
        foreach (var r in results)
            r.Response.Dispose();
        await WaitIdle();
    }
}
