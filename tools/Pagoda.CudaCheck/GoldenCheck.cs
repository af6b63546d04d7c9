using System.Text.Json.Nodes;
using Pagoda.Cuda;

namespace Pagoda.CudaCheck;

/// <summary>
/// The golden greedy runs of tests/fixtures/golden/models.json on the GPU. float32: identical tokens and
/// logprobs within a tolerance; bfloat16 (fortune-chat-bf16): vLLM's rule, agreement until the first
/// divergence, where each side's token is in the other's top 5.
/// </summary>
public static class GoldenCheck
{
    /// <summary>
    /// Runs every case of <paramref name="entry"/> with <paramref name="modelDir"/>; returns failures. A bfloat16 run of
    /// a float32 entry is held to the divergence rule.
    /// </summary>
    public static List<string> Run(string root, string entry, string modelDir, string dtype, TextWriter log, bool enforceEager = false,
        string goldenFile = "tests/fixtures/golden/models.json", Pagoda.SpecDecode.SpeculativeConfig? spec = null)
    {
        var models = JsonNode.Parse(File.ReadAllText(Path.Combine(root, goldenFile)))!.AsObject();
        var e = models[entry]!.AsObject();
        bool exact = dtype == "float32";
        var failures = new List<string>();
        using var llm = new LLM(new EngineArgs
        {
            Model = Path.Combine(root, modelDir), Device = "cuda", BackendProviders = [CudaProvider.Instance], DType = dtype, NumKvBlocks = 512, MaxModelLen = 2048,
            MaxNumSeqs = 16, EnforceEager = enforceEager, SpeculativeConfig = spec,
        });
        double worst = 0;
        int cases = 0, exactMatches = 0;
        var prompts = new List<int[]>();
        foreach (string kind in new[] { "completions", "chats", "ids" })
        {
            if (e[kind] is not JsonArray list)
                continue;
            for (int i = 0; i < list.Count; i++)
            {
                var c = list[i]!.AsObject();
                int[] prompt = c["prompt_ids"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
                int[] expected = c["output_ids"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
                var steps = c["steps"]!.AsArray();
                prompts.Add(prompt);
                var p = new SamplingParams { Temperature = 0, MaxTokens = expected.Length, Logprobs = 5, StopTokenIds = [8192, 8194] };
                var output = llm.Generate([PromptInput.FromTokenIds(prompt)], p)[0].Outputs[0];
                cases++;
                string name = $"{entry}/{kind}/{i}";
                if (exact)
                {
                    bool same = output.TokenIds.SequenceEqual(expected);
                    double maxDiff = 0;
                    for (int s = 0; s < Math.Min(steps.Count, output.Logprobs!.Count); s++)
                        maxDiff = Math.Max(maxDiff, Math.Abs(steps[s]!["logprob"]!.GetValue<double>() - output.Logprobs[s].Logprob));
                    worst = Math.Max(worst, maxDiff);
                    if (same && maxDiff <= 1e-3)
                        exactMatches++;
                    else
                        failures.Add($"{name}: tokens {(same ? "equal" : "differ")}, max logprob diff {maxDiff:E2}");
                }
                else
                {
                    int n = Math.Min(expected.Length, output.TokenIds.Count);
                    int d = 0;
                    while (d < n && expected[d] == output.TokenIds[d])
                        d++;
                    if (d == expected.Length && output.TokenIds.Count == expected.Length)
                    {
                        exactMatches++;
                        continue;
                    }
                    if (d >= n)
                    {
                        failures.Add($"{name}: lengths differ ({output.TokenIds.Count} vs {expected.Length}) with no divergence");
                        continue;
                    }
                    var goldTop = steps[d]!["top5"]!.AsArray().Select(t => t![0]!.GetValue<int>()).ToHashSet();
                    var ourTop = output.Logprobs![d].Top.Select(t => t.TokenId).ToHashSet();
                    bool ok = goldTop.Contains(output.TokenIds[d]) && ourTop.Contains(expected[d]);
                    log.WriteLine($"  {name}: diverges at step {d}/{expected.Length}, {(ok ? "each token in the other's top 5" : "NOT in top 5")}");
                    if (!ok)
                        failures.Add($"{name}: diverges at {d} outside the top 5");
                }
            }
        }
        log.WriteLine($"  {(failures.Count == 0 ? "PASS" : "FAIL")} golden {entry} ({dtype}{(enforceEager ? ", eager" : ", graphs")}): " +
            $"{cases} cases, {exactMatches} identical{(exact ? $", worst logprob diff {worst:E2}" : "")}");
        failures.AddRange(DeviceSamplingCheck.Run(llm, prompts.Take(6).ToList(), 24, log));
        foreach (var f in failures)
            log.WriteLine("    " + f);
        return failures;
    }
}
