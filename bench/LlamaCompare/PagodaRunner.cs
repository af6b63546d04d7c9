using System.Diagnostics;
using Pagoda;
using Pagoda.Engine;

namespace LlamaCompare;

/// <summary>Pagoda's engine on dummy weights: the same prompt, greedy decode, prefill timed to the first token.</summary>
internal sealed class PagodaRunner(string model, string? quantization, int maxLen) : IDisposable
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
    });
    private int _id;

    public LLMEngine Engine => _engine;

    public (double Prefill, double Decode) Generate(int[] prompt, int outputLen)
    {
        var p = new SamplingParams { Temperature = 0, MaxTokens = outputLen, IgnoreEos = true, OutputKind = RequestOutputKind.FinalOnly };
        _engine.AddRequest($"r{_id++}", PromptInput.FromTokenIds(prompt), p);
        var sw = Stopwatch.StartNew();
        double prefill = -1;
        while (_engine.HasUnfinishedRequests)
        {
            _engine.Step();
            if (prefill < 0)
            {
                prefill = sw.Elapsed.TotalSeconds;
                sw.Restart();
            }
        }
        return (prefill, sw.Elapsed.TotalSeconds);
    }

    public void Dispose() => _engine.Dispose();
}
