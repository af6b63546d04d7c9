using Pagoda.Distributed;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Distributed;

/// <summary>
/// --tensor-parallel-size 2 on the CPU: a worker process (the CLI's `tp-worker`) runs the second shard, and every
/// golden prompt of every fixture model (the Llama-style decoders, OPT, Gemma 2 / 3, and the mixtures of experts with
/// their experts split by tensor) gives transformers' greedy ids, with logprobs and prompt logprobs within 1e-4 of the
/// goldens and of tensor-parallel size 1: in one batch, and in a pool so small that chunked prefill and preemption
/// both run. A model's one KV head (tiny-llama, tiny-mistral, the Gemmas) is replicated on both ranks.
/// </summary>
[Collection("tensor-parallel workers")]   // one group at a time: a test finds its worker among this process's children
public class TensorParallelTests
{
    /// <summary>The test host is not the CLI: workers are the CLI's assembly run by this `dotnet`.</summary>
    internal static readonly string[] Worker =
    [
        Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet",
        typeof(Pagoda.Cli.PagodaCli).Assembly.Location, "tp-worker",
    ];

    public static IEnumerable<object[]> Models() => Pagoda.Tests.Engine.BatchGoldenModels.All.Select(m => new object[] { m });

    private static List<RequestOutput> Run(string model, EngineArgs args, List<GoldenCase> cases, Action<LLM>? check = null)
    {
        using var llm = new LLM(args with { Model = TestPaths.Model(model) });
        if (args.TensorParallelSize > 1 && Directory.Exists("/dev/shm"))   // unlinked once the workers mapped it: a kill leaves nothing
            Assert.Empty(Directory.GetFiles("/dev/shm", $"pagoda-tp-{Environment.ProcessId}-*"));
        var outputs = llm.Generate(
            cases.Select(c => PromptInput.FromTokenIds(c.PromptIds)).ToList(),
            cases.Select(c => new SamplingParams { Temperature = 0, MaxTokens = c.OutputIds.Length, StopTokenIds = [8192, 8194], Logprobs = 1, PromptLogprobs = 1 }).ToList());
        check?.Invoke(llm);
        Assert.Equal(0, llm.Engine.KvCacheManager.Usage);
        return [.. outputs];
    }

    private static void Compare(string model, EngineArgs args, Action<LLM>? check = null)
    {
        var cases = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1])).ToList();
        var single = Run(model, args, cases);
        var parallel = Run(model, args with { TensorParallelSize = 2, WorkerCommand = Worker }, cases, check);
        for (int i = 0; i < cases.Count; i++)
        {
            var (c, one, two) = (cases[i], single[i].Outputs[0], parallel[i].Outputs[0]);
            Assert.True(c.OutputIds.SequenceEqual(two.TokenIds), $"{c}: ids differ from the golden");
            for (int s = 0; s < c.Steps.Length; s++)
            {
                Assert.True(Math.Abs(c.Steps[s].Logprob - two.Logprobs![s].Logprob) <= 1e-4, $"{c} step {s}: against the golden");
                Assert.True(Math.Abs(one.Logprobs![s].Logprob - two.Logprobs![s].Logprob) <= 1e-4, $"{c} step {s}: against size 1");
            }
            var (p1, p2) = (single[i].PromptLogprobs!, parallel[i].PromptLogprobs!);
            Assert.Equal(p1.Count, p2.Count);
            for (int t = 1; t < p1.Count; t++)
                Assert.True(Math.Abs(p1[t]!.Logprob - p2[t]!.Logprob) <= 1e-4, $"{c} prompt token {t}: against size 1");
        }
    }

    [Theory, MemberData(nameof(Models))]
    public void AllPromptsInOneBatch(string model) => Compare(model, new EngineArgs());

    [Theory, MemberData(nameof(Models))]
    public void TinyPoolForcesChunkingAndPreemption(string model) =>
        Compare(model, new EngineArgs { NumKvBlocks = 12, BlockSize = 16, MaxModelLen = 192, MaxNumBatchedTokens = 32 },
            llm => Assert.True(llm.Engine.Stats.NumPreemptions > 0, "expected preemptions with a 12-block pool"));

    [Fact]
    public void SpeculativeDecodingRunsOnRankZeroBesideTheShards()
    {
        // n-gram drafts verified by the sharded target, and a draft model (the target itself, unsharded on rank 0).
        Compare("fortune-chat", new EngineArgs { SpeculativeConfig = Pagoda.Tests.SpecDecode.SpecDecodeGoldenTests.Eager },
            llm => Assert.True(llm.Engine.SpecDecodingStats!.NumDrafts > 0));
        Compare("tiny-llama", new EngineArgs { SpeculativeConfig = new() { Method = "draft_model", Model = TestPaths.Model("tiny-llama"), NumSpeculativeTokens = 3, AdaptiveLengths = false } },
            llm => Assert.Equal(llm.Engine.SpecDecodingStats!.NumDraftTokens, llm.Engine.SpecDecodingStats.NumAcceptedTokens));
    }

    [Fact]
    public void TheCliStartsItsOwnWorkers()
    {
        // The CLI run as a program: its workers are itself again (`dotnet Pagoda.Cli.dll tp-worker ...`), found with no
        // WorkerCommand, and a sampled, seeded request gives what size 1 gives.
        string Generate(int tp)
        {
            var info = new System.Diagnostics.ProcessStartInfo(Worker[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { Worker[1], "generate", "--model", TestPaths.Model("fortune-chat"), "--device", "cpu", "--tensor-parallel-size", $"{tp}",
                         "--prompt", "Tell me a fortune.", "--temperature", "0.8", "--seed", "7", "--max-tokens", "24", "--ignore-eos" })
                info.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(info)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stderr.Result}");
            return output;
        }
        string one = Generate(1), two = Generate(2);
        Assert.Contains("Output:", one);
        Assert.Equal(one, two);
    }
}
