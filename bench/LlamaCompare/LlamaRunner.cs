using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LlamaCompare;

/// <summary>llama.cpp through LLamaSharp: prefill of a prompt and greedy decode, timed like Pagoda's side.</summary>
internal sealed class LlamaRunner : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly int _vocab;

    public LlamaRunner(string gguf, int threads, int contextSize, int vocab)
    {
        var p = new ModelParams(gguf)
        {
            ContextSize = (uint)contextSize,
            BatchSize = 512,
            UBatchSize = 512,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
        };
        _weights = LLamaWeights.LoadFromFile(p);
        _context = _weights.CreateContext(p);
        _vocab = vocab;
    }

    /// <summary>Seconds for the prompt (ending with the first greedy token) and for the remaining tokens.</summary>
    public (double Prefill, double Decode) Generate(int[] prompt, int outputLen)
    {
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        var sw = Stopwatch.StartNew();
        for (int start = 0; start < prompt.Length; start += 512)
        {
            batch.Clear();
            int end = Math.Min(prompt.Length, start + 512);
            for (int i = start; i < end; i++)
                batch.Add((LLamaToken)prompt[i], i, (LLamaSeqId)0, i == prompt.Length - 1);
            Check(_context.Decode(batch));
        }
        int token = ArgMax(_context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
        double prefill = sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int i = 1; i < outputLen; i++)
        {
            batch.Clear();
            batch.Add((LLamaToken)token, prompt.Length + i - 1, (LLamaSeqId)0, true);
            Check(_context.Decode(batch));
            token = ArgMax(_context.NativeHandle.GetLogitsIth(0));
        }
        return (prefill, sw.Elapsed.TotalSeconds);
    }

    private int ArgMax(Span<float> logits)
    {
        int best = 0;
        for (int i = 1; i < _vocab; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }

    private static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode: {r}");
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
