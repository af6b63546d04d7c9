using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Pagoda.SpecDecode;

namespace Pagoda.Bench.SpecDecode;

/// <summary>
/// Speculative decoding on the embedded model: each workload run without speculation and with it, alternately, in one
/// process; prints each pair and the median ratio of output tokens per second with the mean acceptance length. Shared by
/// bench/SpecDecode (the CPU) and pagoda-cuda-check spec-bench (the GPU).
/// </summary>
/// <remarks>
/// Workloads: repeat (batch 1: long generations past EOS, where the model writes new chat turns of the same shape),
/// quote (batch 1: the answer repeats a text the prompt gives), plain (batch 1: ordinary fortune prompts, the answer
/// only), c16 (16 ordinary prompts at once, answers only), c16-repeat (16 prompts at once, past EOS), random (batch 1:
/// a prompt of spread token ids, sampled at temperature 1: proposals that are rarely accepted), reask (batch 1: a chat
/// whose earlier turn asked the same question and holds the model's own answer to it, as after a client's "regenerate").
/// </remarks>
public static class SpecDecodeBench
{
    /// <summary>The default proposer: n-gram, up to 4 drafts from 2- to 4-token matches.</summary>
    public const string DefaultConfig = """{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_min": 2, "prompt_lookup_max": 4}""";

    /// <summary>
    /// Runs <paramref name="workload"/> <paramref name="runs"/> times each way with engines made from <paramref name="engine"/>
    /// (the model's own sampling defaults, or greedy); returns the median ratio. <paramref name="describe"/> adds a
    /// word on each engine to every run's line (the GPU's graph count: a capture inside a timed run shows there).
    /// </summary>
    public static double Run(EngineArgs engine, string workload, int runs, SpeculativeConfig spec, bool greedy, TextWriter log,
        Func<LLM, string>? describe = null)
    {
        using var plain = new LLM(engine);
        using var speculative = new LLM(engine with { SpeculativeConfig = spec });
        var work = Workload(plain, workload, greedy);
        (double TokensPerSecond, long Tokens) Pass(LLM llm) => work.Pass(llm);

        // Warm-up, two passes each: the JIT's tiers (a verification kernel still in tier 0 made a first measured run 3x
        // slower), graphs, and the step cost the proposal lengths are chosen against.
        for (int w = 0; w < 2; w++)
        {
            Pass(plain);
            Pass(speculative);
        }
        var ratios = new List<double>();
        for (int r = 1; r <= runs; r++)
        {
            var before = speculative.Engine.SpecDecodingStats!;
            plain.Engine.Timings.Reset();
            speculative.Engine.Timings.Reset();
            var (a, ta) = Pass(plain);
            var (b, tb) = Pass(speculative);
            var s = speculative.Engine.SpecDecodingStats!.Since(before);
            ratios.Add(b / a);
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"run {r}: plain {a:F0} output tok/s ({ta} tokens), speculative {b:F0} ({tb}), ratio {b / a:F3}; {s.NumDrafts} drafts, {s.NumDraftTokens} draft tokens, acceptance {s.AcceptanceRate:P0}, mean acceptance length {s.MeanAcceptanceLength:F2}")
                + (describe == null ? "" : $"; plain {describe(plain)}, speculative {describe(speculative)}"));
        }
        // Where the last run's steps went, each way.
        log.WriteLine($"  plain:       {plain.Engine.Timings}");
        log.WriteLine($"  speculative: {speculative.Engine.Timings}");
        var all = speculative.Engine.SpecDecodingStats!;
        double median = ratios.Order().ElementAt(ratios.Count / 2);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{workload}: median ratio {median:F3}; mean acceptance length {all.MeanAcceptanceLength:F2}, acceptance {all.AcceptanceRate:P0} ({work.Prompts.Length} prompts, {work.Params.MaxTokens} tokens at most, {Environment.ProcessorCount} cores, {engine.Device})"));
        return median;
    }

    /// <summary>
    /// One engine alone (<paramref name="engine"/>, with or without its SpeculativeConfig), to time each side in a process
    /// of its own (for an A/B of whole processes): two warm-up passes, then <paramref name="runs"/> passes; prints their output tokens per second.
    /// </summary>
    public static void RunAlone(EngineArgs engine, string workload, int runs, bool greedy, TextWriter log)
    {
        using var llm = new LLM(engine);
        var work = Workload(llm, workload, greedy);
        work.Pass(llm);
        work.Pass(llm);
        var sw = Stopwatch.StartNew();
        long tokens = 0;
        for (int r = 0; r < runs; r++)
            tokens += work.Pass(llm).Tokens;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{workload} alone: {tokens / sw.Elapsed.TotalSeconds:F0} output tok/s over {runs} passes"));
    }

    private sealed record Work(PromptInput[] Prompts, SamplingParams Params, bool Batch1)
    {
        // One pass: batch-1 workloads run their prompts one after another; the others submit them all at once.
        public (double TokensPerSecond, long Tokens) Pass(LLM llm)
        {
            var sw = Stopwatch.StartNew();
            long tokens = 0;
            if (Batch1)
            {
                foreach (var prompt in Prompts)
                    tokens += llm.Generate([prompt], Params)[0].Outputs[0].TokenIds.Count;
            }
            else
                tokens = llm.Generate(Prompts, Params).Sum(o => (long)o.Outputs[0].TokenIds.Count);
            return (tokens / sw.Elapsed.TotalSeconds, tokens);
        }
    }

    private static Work Workload(LLM llm, string workload, bool greedy)
    {
        string[] topics = ["cats", "work", "love", "computers", "the sea", "money", "politics", "poetry", "history", "food", "dogs", "rain", "music", "cars", "books", "time"];
        static JsonObject Turn(string role, string text) => new() { ["role"] = role, ["content"] = text };
        PromptInput Chat(string text) => llm.RenderChat(new JsonArray(Turn("user", text)));
        // The question asked again after the model's own answer to it, generated now by this engine (with or without
        // speculation the answer is the same).
        PromptInput Reask(string question, SamplingParams first) =>
            llm.RenderChat(new JsonArray(Turn("user", question), Turn("assistant", llm.Generate([Chat(question)], first)[0].Outputs[0].Text), Turn("user", question)));
        const string Quote = "The only thing we learn from history is that we do not learn. That men do not learn very much from history is "
            + "the most important of all the lessons that history has to teach.";
        // The model's own sampling defaults (its generation_config), or greedy.
        var defaults = greedy ? new SamplingParams { Temperature = 0 } : llm.GetDefaultSamplingParams() with { Seed = 0 };
        var answers = defaults with { MaxTokens = 128 };   // answers only, stopping at EOS
        var (prompts, p) = workload switch
        {
            "repeat" => (new[] { Chat("Tell me a fortune.") }, defaults with { MaxTokens = 512, IgnoreEos = true }),
            "quote" => (new[] { Chat($"Repeat this text word for word, three times: {Quote}") }, defaults with { MaxTokens = 256, IgnoreEos = true }),
            "plain" => (topics.Take(8).Select(t => Chat($"Tell me a joke about {t}.")).ToArray(), answers),
            "c16" => (topics.Select(t => Chat($"Tell me a joke about {t}.")).ToArray(), answers),
            "random" => (new[] { PromptInput.FromTokenIds(Enumerable.Range(0, 64).Select(i => (i * 7919) % 8000).ToArray()) }, new SamplingParams { Temperature = 1, MaxTokens = 256, IgnoreEos = true, Seed = 0 }),
            "reask" => (topics.Take(8).Select(t => Reask($"Tell me a joke about {t}.", answers)).ToArray(), answers),
            "c16-repeat" => (topics.Select(t => Chat($"Tell me a joke about {t}.")).ToArray(), defaults with { MaxTokens = 256, IgnoreEos = true }),
            _ => throw new ArgumentException($"unknown workload {workload}"),
        };
        return new Work(prompts, p, workload is "repeat" or "quote" or "plain" or "random" or "reask");
    }
}
