using System.Diagnostics;
using Pagoda.Cuda;

namespace Pagoda.CudaCheck;

/// <summary>
/// Splits step time into host phases and graph replay time for single-stream and large-batch decode and a
/// long prefill; each measured region is also bracketed for `ncu --profile-from-start off`.
/// </summary>
public static class Profile
{
    /// <summary>
    /// Runs the profile on <paramref name="modelDir"/> (a folder with config.json): greedy requests, or with
    /// <paramref name="sampled"/> Qwen2.5's generation_config (T 0.7, top-k 20, top-p 0.8, repetition penalty 1.1),
    /// what requests without sampling fields get from `serve --generation-config auto`.
    /// </summary>
    public static void Run(string modelDir, string dtype, int batch, int context, bool ncu, bool invariant, TextWriter log, bool sampled = false,
        int prefillPrompts = 1, int prefillLen = 1024)
    {
        int Steps(int n) => ncu ? Math.Min(n, 2) : n; // a kernel profiler replays every kernel: keep the range small
        using var llm = new LLM(Bench.Args(modelDir, dtype, eager: false, invariant));
        var engine = llm.Engine;
        var b = (CudaBackend)engine.Backend;
        var rng = new Random(7);
        int vocab = engine.Folder.Config.VocabSize - 1000;
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        SamplingParams P(int n) => sampled
            ? new() { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1, MaxTokens = n, IgnoreEos = true, OutputKind = RequestOutputKind.FinalOnly }
            : new() { Temperature = 0, MaxTokens = n, IgnoreEos = true, OutputKind = RequestOutputKind.FinalOnly };
        log.WriteLine(sampled ? "requests: T 0.7, top-k 20, top-p 0.8, repetition penalty 1.1" : "requests: greedy");

        // Single stream: 128-token prompt, then decode steps.
        llm.Generate([PromptInput.FromTokenIds(Ids(128))], P(16));
        Measure(log, engine, b, "single stream decode (ctx 128-384)", () =>
        {
            engine.AddRequest("s", PromptInput.FromTokenIds(Ids(128)), P(257));
            engine.Step(); // prefill
        }, Steps(256));

        // One prefill step (eager): one 1024-token prompt by default.
        Measure(log, engine, b, $"prefill {prefillPrompts} x {prefillLen} tokens (1 step)", () =>
        {
            for (int i = 0; i < prefillPrompts; i++)
                engine.AddRequest($"p{i}", PromptInput.FromTokenIds(Ids(prefillLen)), P(1));
        }, 1);
        Drain(engine);

        // Large-batch decode: `batch` sequences with `context`-token prompts.
        Measure(log, engine, b, $"decode bs={batch}, ctx {context}", () =>
        {
            for (int i = 0; i < batch; i++)
                engine.AddRequest($"b{i}", PromptInput.FromTokenIds(Ids(context)), P(64));
            while (engine.Stats.NumWaiting > 0 || engine.KvCacheManager.Usage == 0)
                engine.Step(); // prefill every prompt (chunks of max-num-batched-tokens)
            engine.Step();
        }, Steps(32));
        Drain(engine);
    }

    private static void Measure(TextWriter log, Pagoda.Engine.LLMEngine engine, CudaBackend b, string what, Action setup, int steps)
    {
        setup();
        engine.Timings.Reset();
        b.GraphTicks = 0;
        b.ProfilerRange(true);
        int gen0 = GC.CollectionCount(0), gen2 = GC.CollectionCount(2);
        var paused = GC.GetTotalPauseDuration();
        long allocated = GC.GetTotalAllocatedBytes();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
            engine.Step();
        double ms = sw.Elapsed.TotalMilliseconds / steps;
        b.ProfilerRange(false);
        double graphMs = b.GraphTicks * 1000.0 / Stopwatch.Frequency / steps;
        log.WriteLine($"{what}: {ms:F3} ms/step wall; graph launch->done {graphMs:F3} ms/step; {engine.Timings}");
        log.WriteLine($"  GC: {(GC.GetTotalAllocatedBytes() - allocated) / steps / 1024} KiB allocated per step, {GC.CollectionCount(0) - gen0} gen0 / " +
            $"{GC.CollectionCount(2) - gen2} gen2 collections, {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds / steps:F3} ms paused per step");
        Drain(engine);
    }

    private static void Drain(Pagoda.Engine.LLMEngine engine)
    {
        while (engine.HasUnfinishedRequests)
            engine.Step();
    }
}
