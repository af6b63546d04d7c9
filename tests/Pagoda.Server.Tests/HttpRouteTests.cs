using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Server.Tests;

/// <summary>Raw HTTP: every route, the API key on each of them, and the non-generation endpoints' bodies.</summary>
[Collection(ServerCollection.Name)]
public class HttpRouteTests(ServerFixture f)
{
    // The default --api-key-scope (inference) leaves open what routers, probes and metric scrapers call.
    private static readonly HashSet<string> OpenRoutes = ["/health", "/ping", "/metrics", "/version"];

    // The render routes are open too (the llm-d endpoint picker calls them without a key); "{}" is a 400 there.
    private static readonly HashSet<string> OpenRenderRoutes = ["/v1/completions/render", "/v1/chat/completions/render"];

    [Fact]
    public async Task ApiKeyGuardsEveryRouteButTheRoutersOnes()
    {
        var routes = f.Server.Routes;
        Assert.Contains(("POST", "/v1/chat/completions"), routes);
        Assert.True(routes.Count >= 13, string.Join(", ", routes));
        using var anonymous = new HttpClient { BaseAddress = f.BaseAddress };
        foreach (var (method, path) in routes)
        {
            foreach (string? key in new[] { null, "wrong-key", ServerFixture.ApiKey + "x" })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method == "POST")
                    request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
                if (key != null)
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                using var response = await anonymous.SendAsync(request);
                if (OpenRoutes.Contains(path))
                {
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    continue;
                }
                if (OpenRenderRoutes.Contains(path))
                {
                    Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                    continue;
                }
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} with key '{key}': {response.StatusCode}");
                var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
                Assert.Equal("AuthenticationError", error["type"]!.GetValue<string>());
                Assert.Equal(401, error["code"]!.GetValue<int>());
            }
        }
    }

    [Fact]
    public async Task ServiceRoutesAnswerInTheirShapes()
    {
        Assert.Equal(HttpStatusCode.OK, (await f.Http.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await f.Http.PostAsync("/ping", null)).StatusCode);
        Assert.Matches(@"^\{""version"":""\d+\.\d+\.\d+.*""\}$", await f.Http.GetStringAsync("/version"));
        Assert.Equal("""{"server_load":0}""", await f.Http.GetStringAsync("/load"));
        string models = await f.Http.GetStringAsync("/v1/models");
        Assert.StartsWith("""{"object":"list","data":[{"id":"fortune","object":"model","created":""", models);

        var (status, tok) = await f.PostJson("/tokenize", new JsonObject { ["model"] = "fortune", ["prompt"] = "Hello world", ["return_token_strs"] = true });
        Assert.Equal(200, status);
        Assert.Equal("[7397,673]", tok!["tokens"]!.ToJsonString());
        Assert.Equal(["Hello", "Ġworld"], tok["token_strs"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal(2048, tok["max_model_len"]!.GetValue<int>());
        var (_, chatTok) = await f.PostJson("/tokenize", new JsonObject { ["messages"] = GoldenChat.All[0].Messages.DeepClone() });
        Assert.Equal(GoldenChat.All[0].PromptIds, chatTok!["tokens"]!.AsArray().Select(t => t!.GetValue<int>()));
        var (_, detok) = await f.PostJson("/detokenize", new JsonObject { ["tokens"] = new JsonArray(7397, 673) });
        Assert.Equal("Hello world", detok!["prompt"]!.GetValue<string>());

        using var cors = new HttpRequestMessage(HttpMethod.Options, "/v1/models");
        cors.Headers.Add("Origin", "https://example.org");
        cors.Headers.Add("Access-Control-Request-Method", "GET");
        using var preflight = await new HttpClient { BaseAddress = f.BaseAddress }.SendAsync(cors);
        Assert.Equal("https://example.org", preflight.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task InvocationsDispatchByBodyShape()
    {
        var (s1, chat) = await f.PostJson("/invocations", new JsonObject { ["messages"] = GoldenChat.All[4].Messages.DeepClone(), ["temperature"] = 0 });
        Assert.Equal(200, s1);
        Assert.Equal("chat.completion", chat!["object"]!.GetValue<string>());
        Assert.Equal(GoldenChat.All[4].Text, chat["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        var (s2, cmpl) = await f.PostJson("/invocations", new JsonObject { ["prompt"] = new JsonArray(7397, 673), ["max_tokens"] = 3, ["ignore_eos"] = true });
        Assert.Equal(200, s2);
        Assert.Equal("text_completion", cmpl!["object"]!.GetValue<string>());
        var (s3, emb) = await f.PostJson("/invocations", new JsonObject { ["input"] = "hi" });
        Assert.Equal(200, s3);
        Assert.Equal(256, emb!["data"]![0]!["embedding"]!.AsArray().Count);
        var (s4, err) = await f.PostJson("/invocations", new JsonObject { ["foo"] = 1 });
        Assert.Equal(400, s4);
        Assert.Contains("messages", err!["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task MetricsUseVllmNamesAndCountRequests()
    {
        await f.PostJson("/v1/completions", new JsonObject { ["prompt"] = "Metrics", ["max_tokens"] = 4, ["ignore_eos"] = true });
        string text = await f.Http.GetStringAsync("/metrics");
        foreach (string name in new[] { "num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "prefix_cache_queries_total",
                     "prefix_cache_hits_total", "prompt_tokens_total", "generation_tokens_total", "num_preemptions_total" })
            Assert.Contains($"\npagoda:{name}{{model_name=\"fortune\"}} ", text);
        Assert.Contains("# TYPE pagoda:time_to_first_token_seconds histogram\n", text);
        Assert.Contains("pagoda:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"fortune\"} ", text);
        Assert.Contains("pagoda:time_per_output_token_seconds_count{model_name=\"fortune\"} ", text);
        Assert.Matches("pagoda:request_success_total\\{finished_reason=\"length\",model_name=\"fortune\"\\} [1-9]", text);
    }

    [Fact]
    public async Task CompletionsTakeEveryPromptShape()
    {
        var (status, body) = await f.PostJson("/v1/completions", new JsonObject
        {
            ["model"] = "fortune-chat",
            ["prompt"] = new JsonArray(new JsonArray(7397, 11), new JsonArray(7397)),
            ["max_tokens"] = 3, ["ignore_eos"] = true, ["n"] = 2, ["seed"] = 1, ["echo"] = true, ["logprobs"] = 2,
        });
        Assert.Equal(200, status);
        var choices = body!["choices"]!.AsArray();
        Assert.Equal([0, 1, 2, 3], choices.Select(c => c!["index"]!.GetValue<int>()));
        Assert.Equal("fortune", body["model"]!.GetValue<string>());
        Assert.StartsWith("Hello,", choices[0]!["text"]!.GetValue<string>());
        Assert.Equal(2 + 3, choices[0]!["logprobs"]!["tokens"]!.AsArray().Count);
        Assert.Equal(3, body["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(12, body["usage"]!["completion_tokens"]!.GetValue<int>());

        var (s2, strings) = await f.PostJson("/v1/completions", new JsonObject { ["prompt"] = new JsonArray("A", "B"), ["max_tokens"] = 2, ["ignore_eos"] = true });
        Assert.Equal(200, s2);
        Assert.Equal(2, strings!["choices"]!.AsArray().Count);
    }

    /// <summary>--api-key-scope all guards /metrics and /version too; only /health and /ping stay open.</summary>
    [Fact]
    public async Task ScopeAllGuardsEverythingButHealthAndPing()
    {
        var server = PagodaServer.Create(new ServerOptions { Port = 0, ApiKey = "k", ApiKeyScope = "all" }, f.Engine, TextWriter.Null);
        await server.StartAsync();
        try
        {
            using var anonymous = new HttpClient { BaseAddress = server.Address };
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/version")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health")).StatusCode);
        }
        finally
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
        Assert.Throws<ArgumentException>(() => new ServerOptions { ApiKeyScope = "v1" }.Validate());
    }

    /// <summary>vLLM's cache_config_info, as the llm-d endpoint picker reads it: block_size and num_gpu_blocks as labels.</summary>
    [Fact]
    public async Task MetricsCarryTheCacheConfigInfo()
    {
        string text = await f.Http.GetStringAsync("/metrics");
        Assert.Contains("# TYPE pagoda:cache_config_info gauge", text);
        Assert.Matches("pagoda:cache_config_info\\{block_size=\"16\",cache_dtype=\"auto\",enable_prefix_caching=\"True\",gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"1024\"\\} 1", text);
    }
}
