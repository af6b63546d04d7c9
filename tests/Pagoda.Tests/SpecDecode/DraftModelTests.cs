using Pagoda.SpecDecode;
using Pagoda.Tests.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.SpecDecode;

/// <summary>
/// A draft model in the engine: for every golden prompt of every fixture model, greedy output with a draft is
/// transformers' golden output, with the model itself as its draft (which must then accept nearly every draft) and with
/// a random model of the same vocabulary as its draft (whose drafts are mostly rejected); seeded sampled outputs are
/// those without speculation; a pool small enough to preempt keeps the draft's cache in step; mismatched drafts are
/// refused in one line.
/// </summary>
public class DraftModelTests
{
    public static IEnumerable<object[]> Models() => BatchGoldenModels.All.Select(m => new object[] { m });

    // A fixture model's name, or a folder.
    private static SpeculativeConfig Draft(string model, int k = 3) =>
        new() { Method = "draft_model", Model = Directory.Exists(model) ? model : TestPaths.Model(model), NumSpeculativeTokens = k, AdaptiveLengths = false };

    private static SpecDecodingStats RunGoldens(string model, string draft, EngineArgs? args = null)
    {
        var cases = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1])).ToList();
        using var llm = new LLM((args ?? new EngineArgs()) with { Model = TestPaths.Model(model), SpeculativeConfig = Draft(draft) });
        var outputs = llm.Generate(
            cases.Select(c => PromptInput.FromTokenIds(c.PromptIds)).ToList(),
            cases.Select(c => new SamplingParams { Temperature = 0, MaxTokens = c.OutputIds.Length, StopTokenIds = [8192, 8194], Logprobs = 1 }).ToList());
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.True(cases[i].OutputIds.SequenceEqual(outputs[i].Outputs[0].TokenIds), $"{cases[i]}: ids differ");
            for (int s = 0; s < cases[i].Steps.Length; s++)
                Assert.True(Math.Abs(cases[i].Steps[s].Logprob - outputs[i].Outputs[0].Logprobs![s].Logprob) <= 1e-4, $"{cases[i]} step {s}");
        }
        Assert.Equal(0, llm.Engine.KvCacheManager.Usage);
        return llm.Engine.SpecDecodingStats!;
    }

    [Theory, MemberData(nameof(Models))]
    public void TheModelAsItsOwnDraftIsAcceptedAndGivesTheGoldens(string model)
    {
        var stats = RunGoldens(model, model);
        Assert.True(stats.NumDrafts > 0);
        Assert.True(stats.AcceptanceRate > 0.9, $"acceptance {stats.AcceptanceRate:P1} of {stats.NumDraftTokens} draft tokens");
    }

    [Theory, MemberData(nameof(Models))]
    public void ARandomDraftStillGivesTheGoldens(string model)
    {
        // tiny-qwen3 and tiny-llama are random models of the same vocabulary; each drafts for the other models. Every
        // layer of tiny-mistral slides (its blocks behind the window are released), so its draft must slide too:
        // tiny-llama's weights read as a Mistral with tiny-mistral's window.
        using var sliding = new TempModel("tiny-llama");
        sliding.EditConfig(c => (c["architectures"], c["model_type"], c["sliding_window"]) = (new System.Text.Json.Nodes.JsonArray("MistralForCausalLM"), "mistral", 48));
        string draft = model switch { "tiny-llama" => TestPaths.Model("tiny-qwen3"), "tiny-mistral" => sliding.Dir, _ => TestPaths.Model("tiny-llama") };
        var stats = RunGoldens(model, draft);
        Assert.True(stats.NumDrafts > 0);
        Assert.True(stats.AcceptanceRate < 0.5, $"acceptance {stats.AcceptanceRate:P1}");
    }

    [Fact]
    public void TheTrainedDraftOfTheEmbeddedModelIsAcceptedMoreThanItsStartingPoint()
    {
        // models/fortune-chat-draft (tools/train-draft) began as fortune-chat's first two layers; distilled, it must
        // propose better than that truncated model does over the goldens.
        using var truncated = new TempModel("fortune-chat");
        truncated.EditConfig(c => (c["num_hidden_layers"], c["layer_types"]) = (2, new System.Text.Json.Nodes.JsonArray("full_attention", "full_attention")));
        var before = RunGoldens("fortune-chat", truncated.Dir);
        var trained = RunGoldens("fortune-chat", "fortune-chat-draft");
        Assert.True(trained.AcceptanceRate > before.AcceptanceRate + 0.05,
            $"trained {trained.AcceptanceRate:P1} against truncated {before.AcceptanceRate:P1}");
    }

    [Fact]
    public void ABackendThatSamplesOnTheDeviceGetsTheDraftsGreedyTokensFromIt()
    {
        // The GPU's path on the CPU: the draft's rows reduced to their best token by the device's reduction.
        var device = new ReferenceSamplingDevice();
        var stats = RunGoldens("fortune-chat", "fortune-chat", new EngineArgs { Device = device.Device, BackendProviders = [device], NumKvBlocks = 256, MaxModelLen = 512 });
        Assert.True(stats.AcceptanceRate > 0.9, $"acceptance {stats.AcceptanceRate:P1}");
        // Every target row asks for logprobs (a processed reduction); the draft's rows are plain top-1 reductions.
        Assert.True(device.Reduced - device.Processed > 0, $"{device.Reduced} reductions, {device.Processed} processed");
    }

    [Fact]
    public void PreemptionAndChunkingKeepTheDraftsCacheInStep() =>
        RunGoldens("fortune-chat", "fortune-chat", new EngineArgs { NumKvBlocks = 16, BlockSize = 16, MaxModelLen = 192, MaxNumBatchedTokens = 32 });

    [Fact]
    public void SeededSampledOutputsAreThoseWithoutSpeculation()
    {
        var prompt = (PromptInput)"<|user|>\nTell me a fortune.\n<|assistant|>\n";
        SamplingParams[] ps =
        [
            new() { Temperature = 0.8, TopP = 0.9, TopK = 20, RepetitionPenalty = 1.1, Seed = 1, MaxTokens = 80, IgnoreEos = true, Logprobs = 2 },
            new() { Temperature = 1.0, MinP = 0.05, FrequencyPenalty = 0.4, Seed = 2, MaxTokens = 80, IgnoreEos = true },
            new() { Temperature = 0, MaxTokens = 100, IgnoreEos = true, Stop = ["history"] },
        ];
        IReadOnlyList<RequestOutput> Run(SpeculativeConfig? spec)
        {
            using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), SpeculativeConfig = spec });
            return llm.Generate(ps.Select(_ => prompt).ToList(), ps);
        }
        var (plain, drafted) = (Run(null), Run(Draft("fortune-chat", 4)));
        for (int i = 0; i < ps.Length; i++)
        {
            Assert.Equal(plain[i].Outputs[0].TokenIds, drafted[i].Outputs[0].TokenIds);
            Assert.Equal(plain[i].Outputs[0].FinishReason, drafted[i].Outputs[0].FinishReason);
        }
    }

    [Fact]
    public void MismatchedDraftsAreRefusedInOneLine()
    {
        using var other = new TempModel("tiny-llama");
        other.EditConfig(c => c["vocab_size"] = 8000);
        var e = Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs
        {
            Model = TestPaths.Model("fortune-chat"), SpeculativeConfig = Draft("fortune-chat") with { Model = other.Dir },
        }));
        Assert.Contains("vocabulary (8000 tokens) is not the target's (8256)", e.Message);
        e = Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs
        {
            Model = TestPaths.Model("tiny-mistral"), SpeculativeConfig = Draft("tiny-llama"),
        }));
        Assert.Contains("sliding window", e.Message);
    }
}
