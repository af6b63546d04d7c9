using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.KvTransfer;

namespace Pagoda.Server.Tests;

/// <summary>A producer and a consumer server on loopback, as llm-d's decode sidecar drives them.</summary>
public sealed class PdServers : IAsyncLifetime
{
    public (AsyncLLMEngine Engine, PagodaServer Server, HttpClient Http) Producer { get; private set; }
    public (AsyncLLMEngine Engine, PagodaServer Server, HttpClient Http) Consumer { get; private set; }

    public async Task InitializeAsync()
    {
        Producer = await Start(new KvTransferConfig { KvRole = "kv_producer", KvPort = 0, EngineId = "prefill-0" });
        Consumer = await Start(new KvTransferConfig { KvRole = "kv_consumer", EngineId = "decode-0" });
    }

    private static async Task<(AsyncLLMEngine, PagodaServer, HttpClient)> Start(KvTransferConfig config)
    {
        var engine = new AsyncLLMEngine(new LLMEngine(new EngineArgs
        {
            Model = Paths.FortuneChat, NumKvBlocks = 256, GenerationConfig = "vllm", KvTransferConfig = config, Warn = _ => { },
        }));
        var server = PagodaServer.Create(new ServerOptions { Port = 0, ServedModelNames = ["fortune"] }, engine, TextWriter.Null);
        await server.StartAsync();
        return (engine, server, new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) });
    }

    public async Task DisposeAsync()
    {
        foreach (var (engine, server, http) in new[] { Producer, Consumer })
        {
            http.Dispose();
            await server.StopAsync();
            await server.DisposeAsync();
            engine.Dispose();
        }
    }
}

/// <summary>
/// llm-d's P/D flow over HTTP (what its routing sidecar does): the request goes to the producer with max_tokens 1,
/// stream false and kv_transfer_params.do_remote_decode; the kv_transfer_params of its response go with the original
/// request to the consumer, whose answer is the one instance's. Afterwards neither server holds a block.
/// </summary>
public class DisaggregatedServingTests(PdServers servers) : IClassFixture<PdServers>
{
    private static readonly JsonObject PrefillParams = new()
    {
        ["do_remote_decode"] = true, ["do_remote_prefill"] = false, ["remote_engine_id"] = null, ["remote_block_ids"] = null,
        ["remote_host"] = null, ["remote_port"] = null,
    };

    private static async Task<(int Status, string Text)> Post(HttpClient http, string path, JsonObject body, string requestId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Request-Id", requestId);
        using var response = await http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    // The sidecar's two requests; returns the decode response's body text and the prefill's kv_transfer_params.
    private async Task<(string Decode, JsonNode? Params)> Disaggregated(string path, JsonObject original, string requestId)
    {
        var prefill = original.DeepClone().AsObject();
        prefill["kv_transfer_params"] = PrefillParams.DeepClone();
        prefill["stream"] = false;
        prefill.Remove("stream_options");
        prefill["max_tokens"] = 1;
        var (status, text) = await Post(servers.Producer.Http, path, prefill, requestId);
        Assert.Equal(200, status);
        var kv = JsonNode.Parse(text)!["kv_transfer_params"];
        var decode = original.DeepClone().AsObject();
        decode["kv_transfer_params"] = kv?.DeepClone();
        (status, text) = await Post(servers.Consumer.Http, path, decode, requestId);
        Assert.True(status == 200, text);
        return (text, kv);
    }

    private async Task WaitIdle()
    {
        foreach (var engine in new[] { servers.Producer.Engine, servers.Consumer.Engine })
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (engine.Stats is not { NumRunning: 0, NumWaiting: 0, KvCacheUsage: 0 } && DateTime.UtcNow < until)
                await Task.Delay(10);
            Assert.Equal(0, engine.Stats.KvCacheUsage);
        }
    }

    [Fact]
    public async Task CompletionsFlowAnswersAsOneInstance()
    {
        var original = new JsonObject { ["model"] = "fortune", ["prompt"] = "The secret of a happy life is", ["max_tokens"] = 24, ["temperature"] = 0 };
        var (decode, kv) = await Disaggregated("/v1/completions", original, "pd-completion");
        Assert.True(kv!["do_remote_prefill"]!.GetValue<bool>());
        Assert.False(kv["do_remote_decode"]!.GetValue<bool>());
        Assert.Equal("prefill-0", kv["remote_engine_id"]!.GetValue<string>());
        Assert.Equal("cmpl-pd-completion-0", kv["remote_request_id"]!.GetValue<string>());
        Assert.Equal("127.0.0.1", kv["remote_host"]!.GetValue<string>());
        Assert.Equal(servers.Producer.Engine.Engine.KvConnector!.Port, kv["remote_port"]!.GetValue<int>());
        var (_, single) = await Post(servers.Consumer.Http, "/v1/completions", original, "single");
        var body = JsonNode.Parse(decode)!;
        Assert.Equal(JsonNode.Parse(single)!["choices"]![0]!["text"]!.GetValue<string>(), body["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Null(body["kv_transfer_params"]); // a decode holds nothing to pass on
        await WaitIdle();
    }

    [Fact]
    public async Task ChatFlowStreamsTheGoldenAnswer()
    {
        var golden = GoldenChat.All[0];
        var original = new JsonObject
        {
            ["model"] = "fortune", ["messages"] = golden.Messages.DeepClone(), ["max_tokens"] = 48, ["temperature"] = 0, ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        var (decode, kv) = await Disaggregated("/v1/chat/completions", original, "pd-chat");
        Assert.Equal(golden.PromptIds.Length, kv!["remote_num_tokens"]!.GetValue<int>());
        var content = new StringBuilder();
        foreach (string frame in decode.Split("\n\n").Where(f => f.StartsWith("data: {", StringComparison.Ordinal)))
        {
            var chunk = JsonNode.Parse(frame["data: ".Length..])!;
            Assert.Null(chunk["error"]);
            if (chunk["choices"]!.AsArray().FirstOrDefault()?["delta"]?["content"] is JsonValue piece)
                content.Append(piece.GetValue<string>());
        }
        Assert.Equal(golden.Text, content.ToString());
        await WaitIdle();
    }

    [Fact]
    public async Task APullThatFailsIsA503AndLeaksNothing()
    {
        var original = new JsonObject { ["model"] = "fortune", ["prompt"] = "Fortune favours", ["max_tokens"] = 8, ["temperature"] = 0 };
        var prefill = original.DeepClone().AsObject();
        prefill["kv_transfer_params"] = PrefillParams.DeepClone();
        prefill["max_tokens"] = 1;
        var (_, text) = await Post(servers.Producer.Http, "/v1/completions", prefill, "pd-fail");
        var kv = JsonNode.Parse(text)!["kv_transfer_params"]!.AsObject();
        kv["remote_request_id"] = "cmpl-nobody-0"; // blocks nobody holds: the producer refuses
        var decode = original.DeepClone().AsObject();
        decode["kv_transfer_params"] = kv.DeepClone();
        var (status, error) = await Post(servers.Consumer.Http, "/v1/completions", decode, "pd-fail");
        Assert.Equal(503, status);
        var e = JsonNode.Parse(error)!["error"]!;
        Assert.Equal("ServiceUnavailableError", e["type"]!.GetValue<string>());
        Assert.Contains("refused the pull", e["message"]!.GetValue<string>());
        // The real hold is still the producer's; the right params take it, and then both sides are empty.
        decode["kv_transfer_params"] = JsonNode.Parse(text)!["kv_transfer_params"]!.DeepClone();
        Assert.Equal(200, (await Post(servers.Consumer.Http, "/v1/completions", decode, "pd-fail-2")).Status);
        await WaitIdle();
    }

    [Fact]
    public async Task RolesAnInstanceDoesNotHaveAre400s()
    {
        var body = new JsonObject { ["model"] = "fortune", ["prompt"] = "Hello", ["max_tokens"] = 1, ["kv_transfer_params"] = PrefillParams.DeepClone() };
        var (status, text) = await Post(servers.Consumer.Http, "/v1/completions", body, "wrong-role");
        Assert.Equal(400, status);
        Assert.Contains("needs a KV producer", text);
        // llm-d sends the decode with kv_transfer_params null when the prefill returned none: an ordinary request.
        body["kv_transfer_params"] = null;
        Assert.Equal(200, (await Post(servers.Consumer.Http, "/v1/completions", body, "null-params")).Status);
    }
    [Fact]
    public async Task BenchServeDrivesThePairAsTheSidecarDoes()
    {
        string json = Path.Combine(Path.GetTempPath(), $"pd-bench-{Guid.NewGuid():N}.json");
        long prefilled = servers.Producer.Engine.Stats.PromptTokens;
        var output = new StringWriter();
        string[] Args(Uri prefill) => ["bench", "serve", "--base-url", servers.Consumer.Server.Address.ToString(), "--prefill-base-url", prefill.ToString(),
            "--num-prompts", "4", "--input-len", "40", "--output-len", "6", "--ignore-eos", "--max-concurrency", "2", "--output-json", json];
        try
        {
            int rc = await Task.Run(() => Pagoda.Cli.PagodaCli.Run(Args(servers.Producer.Server.Address), output, output));
            Assert.True(rc == 0, output.ToString());
            var report = JsonNode.Parse(File.ReadAllText(json))!;
            Assert.Equal(4, report["completed"]!.GetValue<int>());
            Assert.Equal(24, report["total_output_tokens"]!.GetValue<int>());
            Assert.Contains("prefilled on", output.ToString());
            // The producer computed the prompts (40 tokens each, the first 16 maybe cached after the first).
            Assert.True(servers.Producer.Engine.Stats.PromptTokens - prefilled >= 40, $"{servers.Producer.Engine.Stats.PromptTokens - prefilled} prompt tokens on the producer");
            await WaitIdle();
            // A "prefill" server that is no producer fails every request, with the reason.
            output.GetStringBuilder().Clear();
            Assert.Equal(1, await Task.Run(() => Pagoda.Cli.PagodaCli.Run(Args(servers.Consumer.Server.Address), output, output)));
            Assert.Contains("prefill: 400", output.ToString());
        }
        finally
        {
            File.Delete(json);
        }
    }
}
