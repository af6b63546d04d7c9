using System.Text.Json.Nodes;
using Pagoda.Backends;
using Pagoda.Requests;
using Pagoda.Sampling;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Sampling;

/// <summary>
/// The device sampling path (plan → device reduction → pick) against the host path on the same model and requests:
/// with the reduction done by <see cref="DeviceSamplingReference"/>, every mix of greedy, whole-row draws, top-k /
/// top-p, penalties, logit bias, bad words, min_tokens, allowed ids, a grammar and logprobs gives the same tokens and
/// logprobs as sampling from the whole row on the host. CudaCheck runs the kernels against the same reference.
/// </summary>
public class DeviceSamplingTests
{
    private const string Schema = """{"type": "object", "properties": {"stars": {"type": "integer"}}, "required": ["stars"]}""";

    private static LLM Fortune(ReferenceSamplingDevice? device) => new(new EngineArgs
    {
        Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 256, MaxModelLen = 512,
        Device = device?.Device ?? "cpu", BackendProviders = device != null ? [device] : [],
    });

    private static readonly SamplingParams Base = new() { MaxTokens = 24, Seed = 11 };

    private static readonly SamplingParams[] Mix =
    [
        Base with { Temperature = 0 },
        Base with { Temperature = 0, Logprobs = 5 },
        Base with { Temperature = 0, RepetitionPenalty = 1.3 },
        Base with { Temperature = 1.0, Seed = 1 },
        Base with { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1, Seed = 2 },
        Base with { Temperature = 0.9, TopK = 40, FrequencyPenalty = 0.5, PresencePenalty = 0.3, Logprobs = 3, Seed = 3 },
        Base with { Temperature = 1.2, Seed = 4, LogitBias = new Dictionary<int, double> { [30] = 4.0, [31] = -100 }, Logprobs = 1 },
        Base with { Temperature = 1.0, Seed = 5, BadWords = [" the", " you"], MinTokens = 12, MinP = 0.05, TopK = 64 },
        Base with { Temperature = 1.0, Seed = 6, AllowedTokenIds = [.. Enumerable.Range(40, 80)], Logprobs = 0 },
        Base with { Temperature = 1.0, Seed = 7, StructuredOutputs = new() { Json = Schema }, MaxTokens = 40 },
        Base with { Temperature = 0.8, Seed = 8, N = 2, PresencePenalty = -0.5, RepetitionPenalty = 0.9 },
        Base with { Temperature = 0, PromptLogprobs = 3, Logprobs = 2 },
        Base with { Temperature = 1.0, Seed = 12, PromptLogprobs = 0 },
        Base with { Temperature = 0.6, TopP = 0.9, Seed = 13 },                       // Llama 3's generation_config
        Base with { Temperature = 1.1, MinP = 0.1, RepetitionPenalty = 1.05, Seed = 14 },
        Base with { Temperature = 1.5, TopP = 0.3, MinP = 0.02, Logprobs = 2, Seed = 15 },
    ];

    private static IReadOnlyList<RequestOutput> Run(LLM llm, IReadOnlyList<SamplingParams> mix)
    {
        var prompts = mix.Select((_, i) => (PromptInput)$"Fortune number {i}: ").ToList();
        return llm.Generate(prompts, mix);
    }

    [Fact]
    public void TheDevicePathSamplesWhatTheHostSamples()
    {
        var device = new ReferenceSamplingDevice();
        using var host = Fortune(null);
        using var reduced = Fortune(device);
        var expected = Run(host, Mix);
        var actual = Run(reduced, Mix);
        Assert.True(device.Processed > 10, $"only {device.Processed} processed reductions");
        for (int r = 0; r < Mix.Length; r++)
        {
            SameLogprobs(expected[r].PromptLogprobs, actual[r].PromptLogprobs, $"request {r} prompt");
            for (int c = 0; c < expected[r].Outputs.Count; c++)
            {
                var (e, a) = (expected[r].Outputs[c], actual[r].Outputs[c]);
                Assert.Equal(e.TokenIds, a.TokenIds);
                SameLogprobs(e.Logprobs, a.Logprobs, $"request {r}");
            }
        }
        Assert.True(JsonNode.Parse(actual[9].Outputs[0].Text) is JsonObject || actual[9].Outputs[0].FinishReason == "length");
    }

    private static void SameLogprobs(IReadOnlyList<TokenLogprob?>? expected, IReadOnlyList<TokenLogprob?>? actual, string what)
    {
        Assert.Equal(expected is null, actual is null);
        Assert.Equal(expected?.Count, actual?.Count);
        for (int t = 0; t < (expected?.Count ?? 0); t++)
        {
            var (e, a) = (expected![t], actual![t]);
            Assert.Equal(e is null, a is null);
            if (e is null)
                continue;
            Assert.Equal(e.Rank, a!.Rank);
            Assert.True(Math.Abs(e.Logprob - a.Logprob) < 1e-4, $"{what} token {t}: {e.Logprob} vs {a.Logprob}");
            Assert.Equal(e.Top.Select(x => x.TokenId), a.Top.Select(x => x.TokenId));
            Assert.All(e.Top.Zip(a.Top), p => Assert.True(Math.Abs(p.First.Logprob - p.Second.Logprob) < 1e-4));
        }
    }

    [Fact]
    public void AFailingRowFailsOnlyItsOwnRequest()
    {
        var device = new ReferenceSamplingDevice();
        using var engine = new Pagoda.Engine.LLMEngine(new EngineArgs
        {
            Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 256, MaxModelLen = 512, Device = device.Device, BackendProviders = [device],
            FaultHook = (site, id) =>
            {
                if (site == Pagoda.Execution.FaultSite.Sampler && id == "bad")
                    throw new InvalidOperationException("injected");
            },
        });
        string[] ids = ["good", "bad", "json"];
        int[] mix = [4, 3, 9];
        for (int i = 0; i < ids.Length; i++)
            engine.AddRequest(ids[i], (PromptInput)$"Fortune number {mix[i]}: ", Mix[mix[i]]);
        var final = new Dictionary<string, RequestOutput>();
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step().Where(o => o.Finished))
                final[o.RequestId] = o;
        }
        Assert.Equal("bad", Assert.Single(engine.TakeFailures()).RequestId);
        Assert.Equal(0, engine.KvCacheManager.Usage);
        using var host = Fortune(null);
        var alone = Run(host, Mix);
        Assert.Equal(alone[4].Outputs[0].TokenIds, final["good"].Outputs[0].TokenIds);
        Assert.Equal(alone[9].Outputs[0].TokenIds, final["json"].Outputs[0].TokenIds);
    }

    [Fact]
    public void OnlyATopKBeyondTheCandidatesFallsBackToTheWholeRow()
    {
        var device = new ReferenceSamplingDevice();
        using var host = Fortune(null);
        using var reduced = Fortune(device);
        SamplingParams[] mix = [Base with { Temperature = 1.0, TopK = 100, Seed = 9, IgnoreEos = true }, Base with { Temperature = 0, IgnoreEos = true }];
        Assert.Equal(Run(host, mix).Select(o => o.Outputs[0].TokenIds), Run(reduced, mix).Select(o => o.Outputs[0].TokenIds));
        Assert.Equal(0, device.Reduced);
    }

    [Fact]
    public void PlansOnlyWhatTheCandidatesCanServe()
    {
        var eos = new HashSet<int> { 2 };
        LogitsRow R(SamplingParams p) => new(new Request("r", [5, 6, 7, 6], p, 8, 1, eos));
        var none = new Dictionary<string, Exception>();
        Assert.Equal((1, false), Kind(DeviceSampling.Plan([R(new() { Temperature = 0 })], 64, 1000, none)));
        Assert.Equal((20, false), Kind(DeviceSampling.Plan([R(new() { Temperature = 0 }), R(new() { Temperature = 1, TopK = 20 })], 64, 1000, none)));
        Assert.Equal((1, true), Kind(DeviceSampling.Plan([R(new() { Temperature = 1 })], 64, 1000, none)));
        Assert.Equal((40, true), Kind(DeviceSampling.Plan([R(new() { Temperature = 1 }), R(new() { Temperature = 1, TopK = 40, TopP = 0.5 })], 64, 1000, none)));
        Assert.Null(DeviceSampling.Plan([R(new() { Temperature = 1, TopK = 65 })], 64, 1000, none));
        var nucleus = DeviceSampling.Plan([R(new() { Temperature = 1, MinP = 0.1 }), R(new() { Temperature = 0.6, TopP = 0.9 })], 64, 1000, none)!;
        Assert.Equal((1, true), Kind(nucleus));
        const int W = DeviceSamplingInputs.ParamWidth, Cut = DeviceSamplingInputs.DrawFlag | DeviceSamplingInputs.NucleusFlag;
        Assert.Equal([Cut, 0, BitConverter.SingleToInt32Bits(1f), BitConverter.SingleToInt32Bits(0.1f)], nucleus.Params[6..W]);
        Assert.Equal([Cut, 0, BitConverter.SingleToInt32Bits(0.9f), 0], nucleus.Params[(W + 6)..(2 * W)]);
        Assert.Equal(DeviceSamplingInputs.DrawFlag, DeviceSampling.Plan([R(new() { Temperature = 1 })], 64, 1000, none)!.Params[6]);
        Assert.Null(DeviceSampling.Plan([R(new() { Temperature = 0, Logprobs = 21 })], 64, 1000, none));
        Assert.Null(DeviceSampling.Plan([R(new() { Temperature = 0, PromptLogprobs = 21 }) with { PromptToken = 6 }], 64, 1000, none));
        var prompt = DeviceSampling.Plan([R(new() { Temperature = 0, PromptLogprobs = 2 }) with { PromptToken = 6 }], 64, 1000, none)!;
        Assert.True(prompt.Processed && prompt.Logprobs);
        Assert.Equal([DeviceSamplingInputs.GivenFlag, 6], prompt.Params[6..8]);
        var penalised = DeviceSampling.Plan([R(new() { Temperature = 0, RepetitionPenalty = 1.2 })], 64, 1000, none)!;
        // Distinct tokens of prompt and output, each once, with its output count (the prompt has no output yet).
        Assert.Equal([5, 0, 6, 0, 7, 0], penalised.Penalties.ToArray());
        static (int, bool) Kind(DeviceSamplingInputs? s) => (s!.Candidates, s.Processed);
    }

    [Fact]
    public void OnlyADrawingRowHasAMass()
    {
        // The device computes a row's mass only where it draws (the host never reads the others').
        const int V = 50, W = DeviceSamplingInputs.ParamWidth;
        var logits = Enumerable.Range(0, 2 * V).Select(i => (float)Math.Sin(i)).ToArray();
        var prm = new int[2 * W];
        for (int r = 0; r < 2; r++)
            (prm[r * W], prm[r * W + 3]) = (BitConverter.SingleToInt32Bits(1f), BitConverter.SingleToInt32Bits(1f));
        prm[W + 6] = DeviceSamplingInputs.DrawFlag;
        long u = BitConverter.DoubleToInt64Bits(0.5);
        (prm[W + 1], prm[W + 2]) = ((int)u, (int)(u >> 32));
        var s = new DeviceSamplingInputs(2, 1) { Processed = true, Draws = true, Params = prm, EditOffsets = new int[3], PenaltyOffsets = new int[3] };
        var o = new float[2 * s.RowWidth];
        DeviceSamplingReference.Reduce(logits, V, s, o);
        Assert.Equal((-1f, 0f), (o[2], o[3]));                     // no draw, no mass
        double mass = logits[V..].Sum(x => Math.Exp(x - logits[V..].Max()));
        Assert.Equal(mass, o[s.RowWidth + 3], 4);
        Assert.InRange(o[s.RowWidth + 2], 0, V - 1);
    }

    [Fact]
    public void TheKindSaysWhetherAnyRowDrawsOrCuts()
    {
        // The reduction launches the draw's kernels (and the top-p cut's) only for inputs that say so.
        var eos = new HashSet<int> { 2 };
        LogitsRow R(SamplingParams p) => new(new Request("r", [5, 6, 7, 6], p, 8, 1, eos));
        var none = new Dictionary<string, Exception>();
        (bool, bool) Kind(SamplingParams[] ps)
        {
            var s = DeviceSampling.Plan([.. ps.Select(R)], 64, 1000, none)!;
            Assert.Equal((s.Draws, s.Cuts), (s.Empty(8).Draws, s.Empty(8).Cuts));   // kept by plain rows of the same kind
            return (s.Draws, s.Cuts);
        }
        Assert.Equal((false, false), Kind([new() { Temperature = 0, RepetitionPenalty = 1.1 }]));
        Assert.Equal((false, false), Kind([new() { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1 }]));
        Assert.Equal((true, false), Kind([new() { Temperature = 1 }, new() { Temperature = 0, Logprobs = 5 }]));
        Assert.Equal((true, false), Kind([new() { Temperature = 1, MinP = 0.1 }]));
        Assert.Equal((true, true), Kind([new() { Temperature = 0 }, new() { Temperature = 0.6, TopP = 0.9 }]));
    }
}
