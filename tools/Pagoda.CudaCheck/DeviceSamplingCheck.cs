namespace Pagoda.CudaCheck;

/// <summary>
/// Device-side sampling against the full-logits path on the same engine: asking for logprobs forces
/// full logits to the host, leaving them out lets the GPU reduce each row to its top-k candidates.
/// Greedy (top-1) and seeded top-k sampling (top-64 candidates) must pick exactly the same tokens.
/// </summary>
public static class DeviceSamplingCheck
{
    /// <summary>Runs both comparisons over <paramref name="prompts"/>; returns the failures.</summary>
    public static List<string> Run(LLM llm, IReadOnlyList<int[]> prompts, int maxTokens, TextWriter log)
    {
        var failures = new List<string>();
        var variants = new (string Name, Func<int, SamplingParams> Make)[]
        {
            ("greedy", _ => new SamplingParams { Temperature = 0, MaxTokens = maxTokens, IgnoreEos = true }),
            ("top-k 20, T 0.9, top-p 0.9", i => new SamplingParams
                { Temperature = 0.9, TopK = 20, TopP = 0.9, Seed = 100 + i, MaxTokens = maxTokens, IgnoreEos = true }),
            ("top-k 50, T 1.2, min-p 0.05", i => new SamplingParams
                { Temperature = 1.2, TopK = 50, MinP = 0.05, Seed = 200 + i, MaxTokens = maxTokens, IgnoreEos = true }),
        };
        foreach (var (name, make) in variants)
        {
            int same = 0;
            for (int i = 0; i < prompts.Count; i++)
            {
                var device = llm.Generate([PromptInput.FromTokenIds(prompts[i])], make(i))[0].Outputs[0].TokenIds.ToArray();
                var full = llm.Generate([PromptInput.FromTokenIds(prompts[i])], make(i) with { Logprobs = 1 })[0].Outputs[0].TokenIds.ToArray();
                if (device.SequenceEqual(full))
                    same++;
                else
                    failures.Add($"device sampling {name}, prompt {i}: [{string.Join(',', device)}] vs full logits [{string.Join(',', full)}]");
            }
            // Batched: all prompts at once still agree with each alone (graph replays of larger sizes).
            var batched = llm.Generate(prompts.Select(PromptInput.FromTokenIds).ToList(), prompts.Select((_, i) => make(i)).ToList());
            int batchSame = 0;
            for (int i = 0; i < prompts.Count; i++)
            {
                var alone = llm.Generate([PromptInput.FromTokenIds(prompts[i])], make(i))[0].Outputs[0].TokenIds;
                if (batched[i].Outputs[0].TokenIds.SequenceEqual(alone))
                    batchSame++;
            }
            log.WriteLine($"  {(same == prompts.Count ? "PASS" : "FAIL")} device sampling {name}: {same}/{prompts.Count} identical to the full-logits path; " +
                $"batched vs alone {batchSame}/{prompts.Count}");
        }
        return failures;
    }
}
