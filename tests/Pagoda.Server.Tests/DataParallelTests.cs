using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.KvEvents;
using Pagoda.KvTransfer;

namespace Pagoda.Server.Tests;

/// <summary>
/// --data-parallel-size: replicas behind one server (vLLM's internal load balancing). A burst spreads over the
/// replicas, every answer is the one engine's, and /metrics reports each replica under its engine label.
/// </summary>
public class DataParallelTests
{
    private static EngineArgs Args(int size) => new()
    {
        Model = Paths.FortuneChat, NumKvBlocks = 128, GenerationConfig = "vllm", DataParallelSize = size, Warn = _ => { },
    };

    [Fact]
    public async Task ABurstSpreadsOverTheReplicasAndAnswersAsOneEngine()
    {
        using var engines = new DataParallelEngine(Args(2) with { Backend = new Backends.BackendOptions { CpuThreads = 2 } });
        Assert.Equal(2, engines.Replicas.Count);
        Assert.All(engines.Replicas, r => Assert.Equal(1, r.Engine.Args.Backend!.NumCpuThreads));
        var server = PagodaServer.Create(new ServerOptions { Port = 0, ServedModelNames = ["fortune"] }, engines, TextWriter.Null);
        await server.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(120) };
            string[] prompts = ["A friend", "The best things", "Tomorrow", "Patience", "Your smile", "Good luck", "Wisdom", "A journey"];
            async Task<string> Complete(string prompt)
            {
                var body = new JsonObject { ["model"] = "fortune", ["prompt"] = prompt, ["max_tokens"] = 12, ["temperature"] = 0, ["ignore_eos"] = true };
                using var response = await http.PostAsync("/v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
                string text = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, text);
                return JsonNode.Parse(text)!["choices"]![0]!["text"]!.GetValue<string>();
            }
            var answers = await Task.WhenAll(prompts.Select(Complete));
            // Each replica served some of the burst.
            Assert.All(engines.Replicas, r => Assert.True(r.Stats.GenerationTokens > 0, "a replica got nothing"));
            Assert.Equal(8 * 12, engines.Stats.GenerationTokens);

            using var one = new LLM(Args(1));
            var expected = one.Generate(prompts.Select(p => (PromptInput)p).ToList(), new SamplingParams { Temperature = 0, MaxTokens = 12, IgnoreEos = true });
            Assert.Equal(expected.Select(o => o.Outputs[0].Text), answers);

            string metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("pagoda:generation_tokens_total{engine=\"0\",model_name=\"fortune\"} ", metrics);
            Assert.Contains("pagoda:generation_tokens_total{engine=\"1\",model_name=\"fortune\"} ", metrics);
            Assert.Contains("pagoda:num_requests_running{engine=\"1\",model_name=\"fortune\"} 0", metrics);
        }
        finally
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
    }

    [Fact]
    public void EachRankGetsItsOwnPortsGpuAndThreads()
    {
        var args = Args(3) with
        {
            Backend = new Backends.BackendOptions { CpuThreads = 12 },
            KvEventsConfig = new KvEventsConfig { EnableKvCacheEvents = true, Endpoint = "tcp://*:5557", ReplayEndpoint = "tcp://*:5600" },
            KvTransferConfig = new KvTransferConfig { KvRole = "kv_producer", KvPort = 14579, EngineId = "prefill" },
        };
        var r2 = DataParallelEngine.ForRank(args, 2);
        Assert.Equal(2, r2.DataParallelRank);
        Assert.Equal(1, r2.DataParallelSize);   // a replica is one engine
        Assert.Equal(4, r2.Backend!.NumCpuThreads);
        Assert.Equal("tcp://*:5559", r2.KvEventsConfig!.Endpoint);
        Assert.Equal("tcp://*:5602", r2.KvEventsConfig.ReplayEndpoint);
        Assert.Equal(14581, r2.KvTransferConfig!.KvPort);
        Assert.Equal("prefill-dp2", r2.KvTransferConfig.EngineId);
        // An ephemeral port stays ephemeral; one replica keeps its arguments as given.
        Assert.Equal(0, DataParallelEngine.ForRank(args with { KvTransferConfig = args.KvTransferConfig with { KvPort = 0 } }, 1).KvTransferConfig!.KvPort);
        var single = Args(1);
        Assert.Same(single, DataParallelEngine.ForRank(single, 0));
    }

    [Fact]
    public void OfflineGenerationIsOneEngine()
    {
        var e = Assert.Throws<ArgumentException>(() => new LLM(Args(2)));
        Assert.Contains("--data-parallel-size 2 runs replicas behind `pagoda serve`", e.Message);
        // Refused by the engine itself, whoever builds it (LLM, a chat client, the library).
        Assert.Contains("runs replicas behind `pagoda serve`", Assert.Throws<ArgumentException>(() => new LLMEngine(Args(2))).Message);
        Assert.Throws<ArgumentException>(() => new DataParallelEngine(Args(0)));
    }
    [Fact]
    public async Task EachReplicaPublishesItsKvEventsOnItsOwnPortWithItsRank()
    {
        var (sub0, sub1) = Pagoda.Tests.KvEvents.KvEventSubscriber.OnConsecutivePorts("kv");
        using var _0 = sub0;
        using var _1 = sub1;
        int port = sub0.Port;
        var events = new KvEventsConfig { EnableKvCacheEvents = true, Endpoint = $"tcp://127.0.0.1:{port}", Topic = "kv" };
        using var engines = new DataParallelEngine(Args(2) with { KvEventsConfig = events });
        // Each PUB connects when it will: reset the caches until both subscribers hear a clear, then drain.
        var heard = new bool[2];
        for (var until = DateTime.UtcNow.AddSeconds(20); !(heard[0] && heard[1]) && DateTime.UtcNow < until;)
        {
            Assert.True(await engines.ResetPrefixCacheAsync());
            heard[0] |= sub0.Receive(TimeSpan.FromMilliseconds(100)) != null;
            heard[1] |= sub1.Receive(TimeSpan.FromMilliseconds(100)) != null;
        }
        Assert.True(heard[0] && heard[1], "a replica's events never arrived");
        while (sub0.Receive(TimeSpan.FromMilliseconds(300)) != null || sub1.Receive(TimeSpan.FromMilliseconds(300)) != null) { }
        // Two long prompts at once: one to each replica, each filling blocks that enter its prefix cache.
        var p = new SamplingParams { Temperature = 0, MaxTokens = 2 };
        async Task Run(string id, string prompt)
        {
            await foreach (var _ in engines.GenerateAsync(id, prompt, p)) { }
        }
        await Task.WhenAll(Run("a", string.Concat(Enumerable.Repeat("Fortune favours the bold. ", 12))),
            Run("b", string.Concat(Enumerable.Repeat("A journey of a thousand miles. ", 12))));
        foreach (var (sub, rank) in new[] { (sub0, 0), (sub1, 1) })
        {
            // Late clears from the sync may come first; then the step that stored the prompt's full blocks.
            Pagoda.Tests.KvEvents.KvEventWire.Batch? stored = null;
            for (var until = DateTime.UtcNow.AddSeconds(10); stored == null && DateTime.UtcNow < until;)
            {
                if (sub.Receive(TimeSpan.FromMilliseconds(200)) is { } m && Pagoda.Tests.KvEvents.KvEventWire.Decode(m.Payload) is var d
                    && d.Events.Any(e => (string)e[0]! == "BlockStored"))
                    stored = d;
            }
            Assert.True(stored != null, $"replica {rank} published no BlockStored on port {sub.Port}");
            Assert.Equal((long)rank, Convert.ToInt64(stored.Rank));
        }
    }
}
