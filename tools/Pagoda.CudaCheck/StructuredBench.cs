using System.Diagnostics;

namespace Pagoda.CudaCheck;

/// <summary>
/// Structured outputs on the GPU: the same batch of random-id prompts decoded unconstrained and under a JSON schema
/// whose outputs run to max_tokens, alternating, at vLLM's bench sampling (temperature 1, or --temperature); output tok/s and ratio.
/// Constrained outputs are checked to be JSON prefixes of the schema's shape (they all hit the token limit).
/// </summary>
public static class StructuredBench
{
    private const string Schema = """
        {"type": "object", "properties": {"items": {"type": "array", "minItems": 200, "maxItems": 400,
         "items": {"type": "object", "properties": {"topic": {"type": "string", "enum": ["cats", "work", "love"]}, "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
                   "required": ["topic", "stars"], "additionalProperties": false}}}, "required": ["items"], "additionalProperties": false}
        """;

    public static void Run(string modelDir, string dtype, int concurrency, double temperature, TextWriter log)
    {
        using var llm = new LLM(Bench.Args(modelDir, dtype, eager: false, invariant: false));
        var rng = new Random(3);
        int vocab = llm.Engine.Folder.Config.VocabSize - 1000;
        var prompts = Enumerable.Range(0, concurrency).Select(_ => PromptInput.FromTokenIds(Enumerable.Range(0, 128).Select(_ => rng.Next(vocab)).ToArray())).ToList();
        var plain = new SamplingParams { Temperature = temperature, MaxTokens = 128, IgnoreEos = true, Seed = 1 };
        var constrained = plain with { IgnoreEos = false, StructuredOutputs = new StructuredOutputsParams { Json = Schema } };
        var sw = Stopwatch.StartNew();
        llm.Engine.CompileGrammar(constrained.StructuredOutputs!);
        log.WriteLine($"grammar compiled (vocabulary trie included) in {sw.Elapsed.TotalMilliseconds:F0} ms");
        var ratios = new List<double>();
        for (int r = 0; r < 4; r++)
        {
            double Rate(SamplingParams p, out IReadOnlyList<RequestOutput> outs)
            {
                var t = Stopwatch.StartNew();
                outs = llm.Generate(prompts, prompts.Select((_, i) => p with { Seed = i }).ToList());
                return outs.Sum(o => o.Outputs[0].TokenIds.Count) / t.Elapsed.TotalSeconds;
            }
            double a = Rate(plain, out _), b = Rate(constrained, out var outs);
            if (!outs.All(o => o.Outputs[0].Text.StartsWith("{\"items\"", StringComparison.Ordinal) || o.Outputs[0].Text.StartsWith("{", StringComparison.Ordinal)))
                log.WriteLine("FAIL: a constrained output does not start a JSON object: " + outs.First().Outputs[0].Text[..40]);
            if (r == 0)
                continue; // warm-up
            ratios.Add(b / a);
            log.WriteLine($"run {r}: unconstrained {a:F0} output tok/s, JSON schema {b:F0} output tok/s, ratio {b / a:F3}");
        }
        ratios.Sort();
        log.WriteLine($"structured outputs at {concurrency} sequences, temperature {temperature}: median ratio {ratios[ratios.Count / 2]:F3}");
    }
}
