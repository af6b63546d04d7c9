using Pagoda.Cuda;

namespace Pagoda.CudaCheck;

/// <summary>
/// Issue 17's seeded-request check on the GPU, as the CPU's PhiloxTests runs it: with batch-invariant kernels a seeded
/// request draws the same tokens alone, among 31 others (graph replays of 32 rows) and recomputed after preemption
/// (a pool too small for all 32), for each kind of device sampling: the whole-row draw, the top-p cut, top-k from the
/// candidates with a repetition penalty, min-p.
/// </summary>
public static class SeededCheck
{
    /// <summary>Runs the kinds on fortune-chat; returns the failures (each line printed).</summary>
    public static List<string> Run(string modelDir, string dtype, TextWriter log)
    {
        var failures = new List<string>();
        var kinds = new (string Name, SamplingParams P)[]
        {
            ("T 1", new() { Temperature = 1.0 }),
            ("T 0.6, top-p 0.9", new() { Temperature = 0.6, TopP = 0.9 }),
            ("T 0.7, top-k 20, top-p 0.8, rep. 1.1", new() { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1 }),
            ("T 1, min-p 0.1, presence 0.3", new() { Temperature = 1.0, MinP = 0.1, PresencePenalty = 0.3 }),
        };
        EngineArgs Args(int blocks) => new()
        {
            Model = Path.GetFullPath(modelDir), Device = "cuda", BackendProviders = [CudaProvider.Instance], DType = dtype,
            BatchInvariant = true, NumKvBlocks = blocks, MaxModelLen = 256, MaxNumSeqs = 32,
        };
        using var roomy = new LLM(Args(512));
        using var tight = new LLM(Args(48));
        PromptInput Prompt(int i) => $"Tell me a joke about the number {i}.";
        int[] Tokens(RequestOutput o) => [.. o.Outputs[0].TokenIds];
        foreach (var (name, kind) in kinds)
        {
            var p = kind with { Seed = 1234, MaxTokens = 40, IgnoreEos = true };
            int[] alone = Tokens(roomy.Generate([Prompt(0)], p)[0]);
            var batch = roomy.Generate(Enumerable.Range(0, 32).Select(Prompt).ToList(),
                Enumerable.Range(0, 32).Select(i => i == 0 ? p : p with { Seed = i }).ToList());
            long before = tight.Engine.Stats.NumPreemptions;
            var squeezed = tight.Generate(Enumerable.Range(0, 32).Select(i => Prompt(31 - i)).ToList(),
                Enumerable.Range(0, 32).Select(i => i == 31 ? p : p with { Seed = 31 - i }).ToList());
            long preempted = tight.Engine.Stats.NumPreemptions - before;
            int same = Enumerable.Range(1, 32 - 1).Count(i => Tokens(batch[i]).SequenceEqual(Tokens(squeezed[31 - i])));
            bool ok = alone.SequenceEqual(Tokens(batch[0])) && alone.SequenceEqual(Tokens(squeezed[31])) && same == 31 && preempted > 0;
            string line = $"  {(ok ? "PASS" : "FAIL")} seeded {name}: alone = in 32 {alone.SequenceEqual(Tokens(batch[0]))}, " +
                $"= after preemption {alone.SequenceEqual(Tokens(squeezed[31]))}, others {same}/31 equal, {preempted} preemptions";
            log.WriteLine(line);
            if (!ok)
                failures.Add(line);
        }
        return failures;
    }
}
