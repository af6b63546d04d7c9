namespace Pagoda.CudaCheck;

/// <summary>
/// Seeded requests of every sampling kind through the GPU engine, each alone and all in one batch (graph replays
/// of larger sizes): how many agree. The kernels themselves are checked against the host reference in
/// <see cref="SamplingParity"/>; here the whole path runs on a real model.
/// </summary>
public static class DeviceSamplingCheck
{
    /// <summary>Runs the comparison over <paramref name="prompts"/>; returns the failures (a request that failed).</summary>
    public static List<string> Run(LLM llm, IReadOnlyList<int[]> prompts, int maxTokens, TextWriter log)
    {
        var failures = new List<string>();
        var variants = new (string Name, Func<int, SamplingParams> Make)[]
        {
            ("greedy", _ => new SamplingParams { Temperature = 0 }),
            ("T 1", i => new SamplingParams { Temperature = 1.0, Seed = 50 + i }),
            ("Qwen2.5 defaults", i => new SamplingParams { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1, Seed = 100 + i }),
            ("top-k 50, T 1.2, min-p 0.05, penalties", i => new SamplingParams
                { Temperature = 1.2, TopK = 50, MinP = 0.05, FrequencyPenalty = 0.4, PresencePenalty = 0.2, Seed = 200 + i }),
            ("greedy, logprobs 5", _ => new SamplingParams { Temperature = 0, Logprobs = 5 }),
            ("Llama 3 defaults (top-p 0.9)", i => new SamplingParams { Temperature = 0.6, TopP = 0.9, Seed = 300 + i }),
            ("min-p 0.1, top-p 0.95", i => new SamplingParams { Temperature = 1.0, MinP = 0.1, TopP = 0.95, Seed = 400 + i }),
        };
        foreach (var (name, make) in variants)
        {
            SamplingParams P(int i) => make(i) with { MaxTokens = maxTokens, IgnoreEos = true };
            var batched = llm.Generate(prompts.Select(PromptInput.FromTokenIds).ToList(), prompts.Select((_, i) => P(i)).ToList());
            int same = 0;
            for (int i = 0; i < prompts.Count; i++)
            {
                var alone = llm.Generate([PromptInput.FromTokenIds(prompts[i])], P(i))[0].Outputs[0];
                if (batched[i].Outputs[0].TokenIds.SequenceEqual(alone.TokenIds))
                    same++;
                if (alone.TokenIds.Count != maxTokens || (P(i).Logprobs != null && alone.Logprobs?.Count != maxTokens))
                    failures.Add($"device sampling {name}, prompt {i}: {alone.TokenIds.Count} tokens, {alone.Logprobs?.Count} logprobs");
            }
            log.WriteLine($"  device sampling {name}: batched vs alone {same}/{prompts.Count} identical");
        }
        return failures;
    }
}
