using Pagoda.Engine;
using Pagoda.Execution;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// Output processing deferred by one step, overlapping the next forward (what the engine does over an
/// asynchronous forward such as a CUDA graph replay), checked against the synchronous engine on the CPU:
/// the same outputs and finish reasons, stop strings that end requests already scheduled again, aborts,
/// failures, and exact block accounting.
/// </summary>
public class DeferredOutputTests
{
    private static readonly GoldenCase G = Golden.Load("fortune-chat", "completions", 0);
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 48 };
    private const int NumBlocks = 64;

    private static LLMEngine Engine(DeferredDevice? device, FaultHook? hook = null) => new(new EngineArgs
    {
        Model = TestPaths.Model("fortune-chat"), NumKvBlocks = NumBlocks, BlockSize = 16, MaxModelLen = 256,
        Device = device?.Device ?? "cpu", BackendProviders = device != null ? [device] : [], FaultHook = hook,
    });

    // The golden prompt, or it followed by the first tokens of its output (another prompt, other outputs).
    private static PromptInput Prompt(int variant = 0) => PromptInput.FromTokenIds([.. G.PromptIds, .. G.OutputIds.Take(variant)]);

    // Every stop condition: length, EOS, a stop string (cut and kept), a stop token id, two sequences per prompt.
    private static readonly (string Id, int Variant, SamplingParams Params)[] Workload =
    [
        ("length", 0, Greedy with { IgnoreEos = true, MaxTokens = 40 }),
        ("eos", 0, Greedy with { MaxTokens = 200 }),
        ("stop", 0, Greedy with { Stop = ["won't"] }),
        ("keep", 0, Greedy with { Stop = ["problem", "glitter"], IncludeStopStrInOutput = true }),
        ("token", 0, Greedy with { StopTokenIds = [G.OutputIds[9]] }),
        ("n2", 0, Greedy with { N = 2, Stop = ["won't"] }),
        ("other", 3, Greedy with { MaxTokens = 30 }),
        ("other-stop", 5, Greedy with { Stop = ["e"], MaxTokens = 30 }),
    ];

    private static Dictionary<string, RequestOutput> RunAll(LLMEngine engine, RequestOutputKind kind, Dictionary<string, string>? deltas = null)
    {
        foreach (var (id, variant, p) in Workload)
            engine.AddRequest(id, Prompt(variant), p with { OutputKind = kind });
        var final = new Dictionary<string, RequestOutput>();
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step())
            {
                if (deltas != null)
                    deltas[o.RequestId] = deltas.GetValueOrDefault(o.RequestId, "") + string.Concat(o.Outputs.OrderBy(c => c.Index).Select(c => c.Text));
                if (o.Finished)
                    final.Add(o.RequestId, o);
            }
        }
        Assert.Empty(engine.TakeFailures());
        Assert.Equal(0, engine.KvCacheManager.Usage);
        return final;
    }

    private static string Describe(RequestOutput o) => string.Join(" | ", o.Outputs.OrderBy(c => c.Index).Select(c =>
        $"{c.Index} [{c.Text}] [{string.Join(",", c.TokenIds)}] {c.FinishReason} {c.StopReason}"));

    [Theory]
    [InlineData(RequestOutputKind.FinalOnly)]
    [InlineData(RequestOutputKind.Cumulative)]
    [InlineData(RequestOutputKind.Delta)]
    public void DeferredOutputsEqualSynchronousOnes(RequestOutputKind kind)
    {
        Dictionary<string, RequestOutput> sync, deferred, seam;
        var syncDeltas = new Dictionary<string, string>();
        var deferredDeltas = new Dictionary<string, string>();
        using (var engine = Engine(null))
            sync = RunAll(engine, kind, syncDeltas);
        var device = new DeferredDevice();
        using (var engine = Engine(device))
            deferred = RunAll(engine, kind, deferredDeltas);
        using (var engine = Engine(new DeferredDevice(asynchronous: false)))
            seam = RunAll(engine, kind);

        Assert.Equal(Workload.Length, sync.Count);
        // The workload does reach every stop condition.
        string Text(string id) => kind == RequestOutputKind.Delta ? syncDeltas[id] : sync[id].Outputs[0].Text;
        Assert.Equal(" a glitter.  You just ", Text("stop"));
        Assert.Equal("won't", sync["stop"].Outputs[0].StopReason);
        Assert.Equal(" a glitter", Text("keep"));
        Assert.Equal(G.OutputIds[9], sync["token"].Outputs[0].StopReason);
        Assert.Equal("length", sync["length"].Outputs[0].FinishReason);
        Assert.Equal(2, sync["n2"].Outputs.Count);
        foreach (var id in sync.Keys)
        {
            Assert.Equal(Describe(sync[id]), Describe(deferred[id]));
            Assert.Equal(Describe(sync[id]), Describe(seam[id]));
        }
        if (kind == RequestOutputKind.Delta)
            Assert.Equal(syncDeltas.OrderBy(kv => kv.Key), deferredDeltas.OrderBy(kv => kv.Key));
        Assert.Contains("wait", device.Log);
    }

    [Fact]
    public void OutputProcessingRunsBetweenLaunchAndWait()
    {
        var device = new DeferredDevice();
        using var engine = Engine(device, (site, id) =>
        {
            if (site == FaultSite.Detokenizer)
            {
                lock (device.Log)
                    device.Log.Add("detokenize");
            }
        });
        engine.AddRequest("a", Prompt(), Greedy with { OutputKind = RequestOutputKind.Delta, MaxTokens = 4, IgnoreEos = true });
        // The prefill's token is produced by the next call, whose forward is launched before it is detokenized.
        Assert.Empty(engine.Step());
        Assert.Equal(["launch 1", "wait"], device.Log);
        Assert.Single(engine.Step());
        Assert.Equal(["launch 1", "wait", "launch 1", "detokenize", "wait"], device.Log);
        while (engine.HasUnfinishedRequests)
            engine.Step();
        // Four tokens, four forwards; the last token is processed by a call that schedules nothing.
        Assert.Equal(4, device.Log.Count(e => e.StartsWith("launch", StringComparison.Ordinal)));
        Assert.Equal(4, device.Log.Count(e => e == "detokenize"));
        Assert.Equal("detokenize", device.Log[^1]);
    }

    [Fact]
    public void AStopStringEndsARequestAlreadyScheduledAndFreesItsBlocks()
    {
        // "stop" meets its stop string while "long" keeps "stop" company in every forward.
        var syncDevice = new DeferredDevice(asynchronous: false);
        var device = new DeferredDevice();
        List<int> syncTokens, tokens;
        long syncGenerated, generated;
        using (var engine = Engine(syncDevice))
            (syncTokens, syncGenerated) = RunStopAndLong(engine, null);
        using (var engine = Engine(device))
            (tokens, generated) = RunStopAndLong(engine, engine);
        Assert.Equal(syncTokens, tokens);
        Assert.Equal(syncGenerated, generated);
        // The deferred engine ran "stop" in one forward more than it needed: found by the stop string only then.
        int Pairs(DeferredDevice d) => d.Log.Count(e => e == "launch 2");
        Assert.Equal(Pairs(syncDevice) + 1, Pairs(device));
    }

    private static (List<int> Tokens, long Generated) RunStopAndLong(LLMEngine engine, LLMEngine? checkBlocks)
    {
        engine.AddRequest("stop", Prompt(), Greedy with { Stop = ["won't"] });
        engine.AddRequest("long", Prompt(2), Greedy with { MaxTokens = 60, IgnoreEos = true });
        List<int>? tokens = null;
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step())
            {
                if (o.RequestId != "stop" || !o.Finished)
                    continue;
                tokens = [.. o.Outputs[0].TokenIds];
                Assert.Equal("stop", o.Outputs[0].FinishReason);
                if (checkBlocks is { } e)
                {
                    // Every block not held by "long" is free again, none of "stop"'s kept.
                    var kv = e.KvCacheManager;
                    Assert.Empty(kv.GetBlockIds("stop"));
                    Assert.Equal(NumBlocks - kv.GetBlockIds("long").Length, kv.Pool.NumFreeBlocks);
                    Assert.Equal(1, e.Stats.NumRunning);
                }
            }
        }
        Assert.Equal(0, engine.KvCacheManager.Usage);
        Assert.Equal(NumBlocks, engine.KvCacheManager.Pool.NumFreeBlocks);
        return (tokens ?? throw new Xunit.Sdk.XunitException("no final output for \"stop\""), engine.Stats.GenerationTokens);
    }

    [Fact]
    public void AbortDropsDeferredOutputsAndFreesEverything()
    {
        var device = new DeferredDevice();
        using var engine = Engine(device);
        var p = Greedy with { OutputKind = RequestOutputKind.Delta, IgnoreEos = true, MaxTokens = 20 };
        engine.AddRequest("a", Prompt(), p);
        engine.AddRequest("b", Prompt(1), p);
        var texts = new Dictionary<string, string> { ["a"] = "", ["b"] = "" };
        for (int i = 0; i < 5; i++)
        {
            foreach (var o in engine.Step())
                texts[o.RequestId] += o.Outputs[0].Text;
        }
        // "a"'s token of the last step is still waiting to be processed: the abort drops it.
        engine.Abort("a");
        bool finishedB = false;
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step())
            {
                Assert.Equal("b", o.RequestId);
                texts["b"] += o.Outputs[0].Text;
                finishedB |= o.Finished;
            }
        }
        Assert.True(finishedB);
        Assert.Equal(0, engine.KvCacheManager.Usage);

        using var sync = Engine(null);
        sync.AddRequest("b", Prompt(1), p);
        string expected = "";
        while (sync.HasUnfinishedRequests)
            expected += string.Concat(sync.Step().Select(o => o.Outputs[0].Text));
        Assert.Equal(expected, texts["b"]);
    }

    [Fact]
    public void ADetokenizerFaultFailsOnlyItsPromptWhenDeferred()
    {
        int calls = 0;
        var device = new DeferredDevice();
        using var engine = Engine(device, (site, id) =>
        {
            if (site == FaultSite.Detokenizer && id == "bad" && ++calls == 3)
                throw new InvalidOperationException("injected");
        });
        var p = Greedy with { IgnoreEos = true, MaxTokens = 20, OutputKind = RequestOutputKind.FinalOnly };
        engine.AddRequest("bad", Prompt(), p);
        engine.AddRequest("good", Prompt(1), p);
        RequestOutput? good = null;
        var failures = new List<RequestFailure>();
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step())
            {
                Assert.Equal("good", o.RequestId);
                good = o;
            }
            failures.AddRange(engine.TakeFailures());
        }
        Assert.Equal("bad", Assert.Single(failures).RequestId);
        Assert.Equal(0, engine.KvCacheManager.Usage);
        Assert.Equal(NumBlocks, engine.KvCacheManager.Pool.NumFreeBlocks);

        using var sync = Engine(null);
        sync.AddRequest("good", Prompt(1), p);
        RequestOutput? expected = null;
        while (sync.HasUnfinishedRequests)
            expected = sync.Step().SingleOrDefault() ?? expected;
        Assert.Equal(Describe(expected!), Describe(good!));
    }

    [Fact]
    public void AForwardFaultFailsItsBatchAndLeavesNothingBehind()
    {
        int calls = 0;
        var device = new DeferredDevice();
        using var engine = Engine(device, (site, id) =>
        {
            if (site == FaultSite.Forward && id == "a" && ++calls == 4)
                throw new InvalidOperationException("injected");
        });
        var p = Greedy with { IgnoreEos = true, MaxTokens = 20, OutputKind = RequestOutputKind.FinalOnly };
        engine.AddRequest("a", Prompt(), p);
        engine.AddRequest("b", Prompt(1), p);
        var failures = new List<string>();
        while (engine.HasUnfinishedRequests)
        {
            Assert.Empty(engine.Step()); // final-only outputs: neither finishes
            failures.AddRange(engine.TakeFailures().Select(f => f.RequestId));
        }
        Assert.Equal(["a", "b"], failures.Order());
        Assert.Equal(0, engine.KvCacheManager.Usage);

        // The engine goes on: a new request runs as on a fresh synchronous engine.
        engine.AddRequest("c", Prompt(), Greedy);
        RequestOutput? c = null;
        while (engine.HasUnfinishedRequests)
            c = engine.Step().SingleOrDefault() ?? c;
        Assert.Equal(G.OutputIds.Take(c!.Outputs[0].TokenIds.Count), c.Outputs[0].TokenIds);
    }
}
