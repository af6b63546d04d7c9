using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.SpecDecode;

namespace Pagoda.Server.Tests;

/// <summary>
/// `--speculative-config` behind the OpenAI server: a completion, streamed, has the same tokens as on a server without
/// speculation (greedy and seeded sampled, with logprobs), /metrics carries vLLM's spec_decode counters, and the stats
/// logger writes vLLM's SpecDecoding line.
/// </summary>
public class SpecDecodeServingTests
{
    private static async Task<(AsyncLLMEngine Engine, PagodaServer Server, HttpClient Http)> Start(SpeculativeConfig? spec)
    {
        var engine = new AsyncLLMEngine(new LLMEngine(new EngineArgs
        {
            Model = Paths.FortuneChat, NumKvBlocks = 256, GenerationConfig = "vllm", SpeculativeConfig = spec, Warn = _ => { },
        }));
        var server = PagodaServer.Create(new ServerOptions { Port = 0, ServedModelNames = ["fortune"] }, engine, TextWriter.Null);
        await server.StartAsync();
        return (engine, server, new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) });
    }

    // The streamed text and per-token logprobs of one completion.
    private static async Task<(string Text, List<double> Logprobs)> Complete(HttpClient http, JsonObject body)
    {
        using var response = await http.PostAsync("/v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var text = new StringBuilder();
        var logprobs = new List<double>();
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
                continue;
            var choice = JsonNode.Parse(line[6..])!["choices"]!.AsArray().FirstOrDefault();
            if (choice == null)
                continue;
            text.Append((string?)choice["text"]);
            foreach (var lp in choice["logprobs"]?["token_logprobs"]?.AsArray() ?? [])
                logprobs.Add((double)lp!);
        }
        return (text.ToString(), logprobs);
    }

    [Fact]
    public async Task SpeculativeServerAnswersAsThePlainOneAndCountsItsDrafts()
    {
        var plain = await Start(null);
        var spec = await Start(new SpeculativeConfig { Method = "ngram", NumSpeculativeTokens = 3, PromptLookupMin = 1, PromptLookupMax = 3, AdaptiveLengths = false });
        try
        {
            var before = spec.Engine.Stats;
            foreach (var sampling in new[] { new JsonObject { ["temperature"] = 0 }, new JsonObject { ["temperature"] = 0.8, ["top_p"] = 0.9, ["seed"] = 7 } })
            {
                var body = new JsonObject
                {
                    ["model"] = "fortune", ["prompt"] = "<|user|>\nTell me a fortune.\n<|assistant|>\n", ["max_tokens"] = 96, ["ignore_eos"] = true,
                    ["stream"] = true, ["logprobs"] = 1,
                };
                foreach (var (k, v) in sampling)
                    body[k] = v!.DeepClone();
                var (a, b) = (await Complete(plain.Http, body), await Complete(spec.Http, body));
                Assert.Equal(a.Text, b.Text);
                Assert.Equal(96, b.Logprobs.Count);
                Assert.All(a.Logprobs.Zip(b.Logprobs), p => Assert.True(Math.Abs(p.First - p.Second) < 1e-4));
            }
            var metrics = await spec.Http.GetStringAsync("/metrics");
            var drafts = metrics.Split('\n').Single(l => l.StartsWith("pagoda:spec_decode_num_drafts_total", StringComparison.Ordinal));
            Assert.True(double.Parse(drafts.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture) > 0, drafts);
            Assert.Contains("pagoda:spec_decode_num_accepted_tokens_per_pos_total{position=\"2\"", metrics);
            Assert.DoesNotContain("spec_decode", await plain.Http.GetStringAsync("/metrics"));
            var line = StatsLogger.SpecDecodingLine(before, spec.Engine.Stats, 1.0)!;
            Assert.StartsWith("SpecDecoding metrics: Mean acceptance length: ", line);
            Assert.Contains("Per-position acceptance rate: ", line);
            Assert.Null(StatsLogger.SpecDecodingLine(spec.Engine.Stats, spec.Engine.Stats, 1.0));
        }
        finally
        {
            foreach (var (engine, server, http) in new[] { plain, spec })
            {
                http.Dispose();
                await server.StopAsync();
                await server.DisposeAsync();
                engine.Dispose();
            }
        }
    }
}
