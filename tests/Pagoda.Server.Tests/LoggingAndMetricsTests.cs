using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.KvCache;
using Pagoda.Server.Metrics;

namespace Pagoda.Server.Tests;

/// <summary>What the server logs (and keeps out of its logs), the stats line, and the vLLM metric prefix.</summary>
[Collection(ServerCollection.Name)]
public class LoggingAndMetricsTests(ServerFixture f)
{
    [Fact]
    public async Task PromptsAndOutputsStayOutOfTheLogAndTheStatsLineAppearsWhileBusy()
    {
        const string secret = "my secret prompt about pelicans";
        var (status, _) = await f.PostJson("/v1/completions", new JsonObject { ["prompt"] = secret, ["max_tokens"] = 40, ["ignore_eos"] = true });
        Assert.Equal(200, status);
        await Task.Delay(500); // the fixture's stats interval is 200 ms
        string log = f.LogText();
        Assert.Contains("Added request cmpl-", log);
        Assert.DoesNotContain("pelicans", log);
        Assert.Matches(@"Avg prompt throughput: \d+\.\d tokens/s, Avg generation throughput: \d+\.\d tokens/s, Running: \d+ reqs, Waiting: \d+ reqs, KV cache usage: \d+\.\d%, Prefix cache hit rate: \d+\.\d%", log);
    }

    [Fact]
    public void StatsLineMatchesVllmsAndIsQuietWhenIdle()
    {
        var before = new EngineStats(0, 0, 0, new PrefixCacheStats(100, 0), 0, 100, 50);
        var now = new EngineStats(2, 1, 0.125, new PrefixCacheStats(300, 100), 0, 300, 250);
        Assert.Equal("Avg prompt throughput: 20.0 tokens/s, Avg generation throughput: 20.0 tokens/s, Running: 2 reqs, Waiting: 1 reqs, " +
                     "KV cache usage: 12.5%, Prefix cache hit rate: 50.0%", StatsLogger.Line(before, now, 10));
        Assert.Null(StatsLogger.Line(before, before, 10));
    }

    [Fact]
    public void VllmPrefixServesExistingDashboards()
    {
        var metrics = new ServerMetrics("vllm", "m");
        using (var timer = metrics.Start())
        {
            timer.Tokens(1);
            timer.Tokens(3);
            timer.Finished("stop");
        }
        string text = metrics.Render([new EngineStats(1, 0, 0.5, new PrefixCacheStats(10, 5), 2, 7, 4)]);
        Assert.Contains("\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.5\n", text);
        Assert.Contains("\nvllm:num_preemptions_total{model_name=\"m\"} 2.0\n", text);
        Assert.Contains("\nvllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 1.0\n", text);
        Assert.Contains("\nvllm:time_per_output_token_seconds_count{model_name=\"m\"} 1\n", text);
        Assert.DoesNotContain("pagoda:", text);
    }

    [Fact]
    public async Task EmbeddingsWaitForRoomAndDoNotDependOnTheBatch()
    {
        var alone = (await f.PostJson("/v1/embeddings", new JsonObject { ["input"] = new JsonArray(7397, 11, 478) })).Body!;
        var busy = f.PostJson("/v1/completions", new JsonObject { ["prompt"] = "Busy", ["max_tokens"] = 64, ["ignore_eos"] = true, ["n"] = 3 });
        var during = (await f.PostJson("/v1/embeddings", new JsonObject { ["input"] = new JsonArray(new JsonArray(7397, 11, 478)), ["encoding_format"] = "float" })).Body!;
        Assert.Equal(200, (await busy).Status);
        Assert.Equal(alone["data"]![0]!["embedding"]!.ToJsonString(), during["data"]![0]!["embedding"]!.ToJsonString());
        Assert.Equal(3, during["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.True(await f.WaitIdle(TimeSpan.FromSeconds(5)));
    }
}
