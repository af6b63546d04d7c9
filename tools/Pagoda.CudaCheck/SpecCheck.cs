using System.Diagnostics;
using Pagoda.Cuda;
using Pagoda.SpecDecode;

namespace Pagoda.CudaCheck;

/// <summary>
/// Speculative decoding on the GPU: the float32 goldens of fortune-chat and tiny-llama with n-gram drafts and with the
/// model as its own draft (every proposal verified, whatever the timings); and on a dummy shape, what a step verifying
/// k drafts costs against a plain decode step (the model as its own draft: dummy weights make it accept nearly all).
/// </summary>
public static class SpecCheck
{
    /// <summary>
    /// The goldens with drafts: models.json's fixtures, and with <paramref name="archDir"/> (golden-arch's folder) every
    /// fixture of models-arch.json; returns failures.
    /// </summary>
    public static int Goldens(TextWriter log, string? archDir = null)
    {
        var runs = new List<(string Root, string Entry, string Dir, string File)>
        {
            (".", "fortune-chat", "models/fortune-chat", "tests/fixtures/golden/models.json"),
        };
        foreach (string name in new[] { "tiny-llama", "tiny-qwen3", "tiny-opt" })
            runs.Add((".", name, $"tests/fixtures/models/{name}", "tests/fixtures/golden/models.json"));
        if (archDir != null)
        {
            foreach (string name in new[] { "tiny-mistral", "tiny-phi3", "tiny-qwen2-yarn", "tiny-gemma2", "tiny-gemma3", "tiny-qwen3-moe", "tiny-mixtral", "tiny-gpt-oss" })
                runs.Add((archDir, name, Path.Combine(archDir, name), "models-arch.json"));
        }
        int failures = 0;
        foreach (var (root, entry, dir, file) in runs)
        {
            // A folder without its config.json was not carried (the device's copy may keep an empty folder of an earlier tree).
            if (!File.Exists(Path.Combine(root == "." ? dir : Path.Combine(root, entry), "config.json")))
            {
                log.WriteLine($"  golden {entry}: skipped, its folder was not carried");
                continue;
            }
            var ngram = new SpeculativeConfig { Method = "ngram", NumSpeculativeTokens = 4, PromptLookupMin = 1, PromptLookupMax = 3, AdaptiveLengths = false };
            var self = new SpeculativeConfig { Method = "draft_model", Model = Path.GetFullPath(dir), NumSpeculativeTokens = 3, AdaptiveLengths = false };
            foreach (var spec in new[] { ngram, self })
            {
                try
                {
                    var found = GoldenCheck.Run(root, entry, root == "." ? dir : entry, "float32", log, goldenFile: file, spec: spec);
                    log.WriteLine($"  golden {entry} with {spec.Method}: {(found.Count == 0 ? "OK" : string.Join("; ", found))}");
                    failures += found.Count;
                }
                catch (Exception e) when (e is NotSupportedException or ArgumentException)
                {
                    log.WriteLine($"  FAIL golden {entry} with {spec.Method}: {e.GetType().Name}: {e.Message}");
                    failures++;
                }
            }
        }
        return failures;
    }

    /// <summary>Single-stream decode of <paramref name="modelDir"/> without drafts and verifying k = 1, 2, 4 drafts a step.</summary>
    public static void VerifyCost(string modelDir, string dtype, TextWriter log)
    {
        foreach (int k in new[] { 0, 1, 2, 4 })
        {
            var args = Bench.Args(modelDir, dtype, eager: false, invariant: false) with
            {
                SkipTokenizerInit = true,
                SpeculativeConfig = k == 0 ? null : new SpeculativeConfig { Method = "draft_model", Model = modelDir, NumSpeculativeTokens = k, AdaptiveLengths = false },
            };
            using var llm = new LLM(args);
            var engine = llm.Engine;
            var prompt = PromptInput.FromTokenIds(Enumerable.Range(0, 256).Select(i => (i * 7919) % 30000).ToArray());
            var p = new SamplingParams { Temperature = 0, MaxTokens = 256, IgnoreEos = true, OutputKind = RequestOutputKind.FinalOnly };
            llm.Generate([prompt], p with { MaxTokens = 32 });   // warm-up
            engine.Timings.Reset();
            var sw = Stopwatch.StartNew();
            llm.Generate([prompt], p);
            double seconds = sw.Elapsed.TotalSeconds;
            var (_, _, forward, _, update) = engine.Timings.PerStepMs();
            var s = engine.SpecDecodingStats;
            log.WriteLine($"  k {k}: {engine.Timings.Steps} steps for 256 tokens in {seconds * 1000:F1} ms; target forward {forward:F3} ms/step, "
                + $"update (drafting included) {update:F3} ms/step" + (s is { NumDrafts: > 0 } ? $"; mean acceptance length {s.MeanAcceptanceLength:F2}" : ""));
        }
    }
}
