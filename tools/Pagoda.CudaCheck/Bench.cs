using System.Diagnostics;
using Pagoda.Cuda;

namespace Pagoda.CudaCheck;

/// <summary>Benchmarks of docs/BENCHMARKS.md: a model shape with dummy weights (start-up, TTFT, decode, throughput, invariance).</summary>
public static class Bench
{
    /// <summary>The engine every GPU benchmark and profile measures: dummy weights, 4,096-token contexts, no prefix cache.</summary>
    public static EngineArgs Args(string modelDir, string dtype, bool eager, bool invariant) => new()
    {
        Model = modelDir, LoadFormat = "dummy", Device = "cuda", BackendProviders = [CudaProvider.Instance], DType = dtype, MaxModelLen = 4096,
        MaxNumSeqs = 256, MaxNumBatchedTokens = 8192, EnforceEager = eager, EnablePrefixCaching = false,
        BatchInvariant = invariant,
    };

    /// <summary>Runs the suite on <paramref name="modelDir"/> (a folder with config.json).</summary>
    /// <remarks><paramref name="quick"/> measures only start-up, single-stream decode and batch invariance.</remarks>
    public static void Run(string modelDir, string dtype, bool eager, bool invariant, int numPrompts, TextWriter log, bool quick = false)
    {
        var args = Args(modelDir, dtype, eager, invariant);
        var processStart = Process.GetCurrentProcess().StartTime.ToUniversalTime();
        var sw = Stopwatch.StartNew();
        using var llm = new LLM(args);
        double loadS = sw.Elapsed.TotalSeconds;
        double readyS = (DateTime.UtcNow - processStart).TotalSeconds;
        var b = (CudaBackend)llm.Engine.Backend;
        log.WriteLine($"device {b.Device.Name}; kernels {b.KernelInfo}; fixed-order GEMM (batch invariant) {b.BatchInvariant}");
        log.WriteLine($"engine built in {loadS:F2} s (process start to ready {readyS:F2} s); KV blocks {llm.Engine.KvCacheInfo.NumBlocks}; eager={eager}");

        var rng = new Random(7);
        int vocab = llm.Engine.Folder.Config.VocabSize - 1000;
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        SamplingParams P(int n) => new() { Temperature = 0, MaxTokens = n, IgnoreEos = true };

        if (!quick)
        {
            sw.Restart();
            llm.Generate([PromptInput.FromTokenIds(Ids(1024))], P(1));
            double ttft = sw.Elapsed.TotalMilliseconds;
            double fromStart = (DateTime.UtcNow - processStart).TotalSeconds;
            log.WriteLine($"first 1024-token prompt to first token: {ttft:F1} ms (process start to first token {fromStart:F2} s)");
            sw.Restart();
            llm.Generate([PromptInput.FromTokenIds(Ids(1024))], P(1));
            log.WriteLine($"1024-token prefill, warm: {sw.Elapsed.TotalMilliseconds:F1} ms");
        }

        var prompt = Ids(128);
        llm.Generate([PromptInput.FromTokenIds(prompt)], P(8));
        sw.Restart();
        llm.Generate([PromptInput.FromTokenIds(prompt)], P(1));
        double t1 = sw.Elapsed.TotalSeconds;
        sw.Restart();
        llm.Generate([PromptInput.FromTokenIds(prompt)], P(257));
        double t257 = sw.Elapsed.TotalSeconds;
        log.WriteLine($"single stream 128 in / 256 out: {256 / (t257 - t1):F1} tok/s decode ({(t257 - t1) / 256 * 1000:F3} ms/step), {257 / t257:F1} tok/s end to end");

        // Batch invariance: 8 greedy prompts alone, then together with 24 others of other lengths.
        var probe = Enumerable.Range(0, 8).Select(i => Ids(20 + 13 * i)).ToArray();
        var alone = probe.Select(p => llm.Generate([PromptInput.FromTokenIds(p)], P(48))[0].Outputs[0].TokenIds.ToArray()).ToArray();
        var mixed = probe.Concat(Enumerable.Range(0, 24).Select(i => Ids(50 + 31 * i))).Select(PromptInput.FromTokenIds).ToList();
        var together = llm.Generate(mixed, P(48));
        int same = Enumerable.Range(0, 8).Count(i => together[i].Outputs[0].TokenIds.SequenceEqual(alone[i]));
        log.WriteLine($"batch invariance: {same}/8 greedy outputs identical alone vs in a batch of 32");
        if (quick)
            return;

        var lens = Enumerable.Range(0, numPrompts).Select(_ => (In: rng.Next(100, 1025), Out: rng.Next(100, 1025))).ToArray();
        var prompts = lens.Select(l => PromptInput.FromTokenIds(Ids(l.In))).ToList();
        var ps = lens.Select(l => P(l.Out)).ToList();
        llm.Engine.Timings.Reset();
        if (llm.Engine.Backend is CudaBackend gb)
            gb.GraphTicks = 0;
        sw.Restart();
        var outs = llm.Generate(prompts, ps);
        double el = sw.Elapsed.TotalSeconds;
        long outTok = outs.Sum(o => (long)o.Outputs[0].TokenIds.Count), inTok = lens.Sum(l => (long)l.In);
        log.WriteLine($"offline throughput, {numPrompts} prompts, in/out uniform [100, 1024]: {outTok / el:F0} output tok/s, " +
            $"{(outTok + inTok) / el:F0} total tok/s ({el:F1} s, {outTok} out, {inTok} in)");
        log.WriteLine($"offline steps: {llm.Engine.Timings}");
        if (llm.Engine.Backend is CudaBackend cb)
            log.WriteLine($"graph launch->done {cb.GraphTicks * 1000.0 / Stopwatch.Frequency:F0} ms in all; activation pool {cb.PoolBytes >> 20} MiB");
    }
}
