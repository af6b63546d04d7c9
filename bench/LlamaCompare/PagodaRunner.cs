using System.Diagnostics;
using Pagoda;
using Pagoda.Engine;

namespace LlamaCompare;

/// <summary>Pagoda's engine on dummy weights: one request, greedy, one engine step per call.</summary>
internal sealed class PagodaRunner(string model, string? quantization, int maxLen, bool batchInvariant) : ISide
{
    private readonly LLMEngine _engine = new(new EngineArgs
    {
        Model = model,
        LoadFormat = "dummy",
        SkipTokenizerInit = true,
        Quantization = quantization,
        MaxModelLen = maxLen,
        EnablePrefixCaching = false,
        KvCacheMemory = 1L << 30,
        BatchInvariant = batchInvariant,
    });
    private int _id;

    public LLMEngine Engine => _engine;

    public double Start(int[] prompt, int outputLen)
    {
        while (_engine.HasUnfinishedRequests)
            _engine.Step();   // the previous request's leftover steps, if any, untimed
        var p = new SamplingParams { Temperature = 0, MaxTokens = outputLen, IgnoreEos = true, OutputKind = RequestOutputKind.FinalOnly };
        var sw = Stopwatch.StartNew();
        _engine.AddRequest($"r{_id++}", PromptInput.FromTokenIds(prompt), p);
        _engine.Step();
        return sw.Elapsed.TotalSeconds;
    }

    public double Next()
    {
        var sw = Stopwatch.StartNew();
        _engine.Step();
        return sw.Elapsed.TotalSeconds;
    }

    public void Dispose() => _engine.Dispose();
}
