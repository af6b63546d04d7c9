using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LlamaCompare;

/// <summary>llama.cpp through LLamaSharp: prefill of a prompt and greedy decode, one token per call.</summary>
internal sealed class LlamaRunner : ISide
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

    private readonly LLamaBatch _batch = new();
    private int _token, _position;

    public double Start(int[] prompt, int outputLen)
    {
        var sw = Stopwatch.StartNew();
        _context.NativeHandle.MemoryClear(true);
        for (int start = 0; start < prompt.Length; start += 512)
        {
            _batch.Clear();
            int end = Math.Min(prompt.Length, start + 512);
            for (int i = start; i < end; i++)
                _batch.Add((LLamaToken)prompt[i], i, (LLamaSeqId)0, i == prompt.Length - 1);
            Check(_context.Decode(_batch));
        }
        _token = ArgMax(_context.NativeHandle.GetLogitsIth(_batch.TokenCount - 1));
        _position = prompt.Length;
        return sw.Elapsed.TotalSeconds;
    }

    public double Next()
    {
        var sw = Stopwatch.StartNew();
        _batch.Clear();
        _batch.Add((LLamaToken)_token, _position++, (LLamaSeqId)0, true);
        Check(_context.Decode(_batch));
        _token = ArgMax(_context.NativeHandle.GetLogitsIth(0));
        return sw.Elapsed.TotalSeconds;
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
