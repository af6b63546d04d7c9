using Pagoda.Engine;
using Pagoda.KvTransfer;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.KvTransfer;

/// <summary>
/// A producer and a consumer engine of one model in this process, talking over loopback (an ephemeral port): what the
/// disaggregated-prefill tests drive, with the llm-d flow's two requests and the block accounting of both sides.
/// </summary>
internal sealed class PdPair : IDisposable
{
    public AsyncLLMEngine Producer { get; }
    public AsyncLLMEngine Consumer { get; }
    private bool _producerDisposed, _consumerDisposed;

    public PdPair(string model, int blockSize = 16, KvTransferConfig? producer = null, KvTransferConfig? consumer = null, int producerBlocks = 128,
        int consumerMaxNumSeqs = 256)
    {
        Producer = Start(model, blockSize, producerBlocks, producer ?? new KvTransferConfig { KvRole = "kv_producer", KvPort = 0, EngineId = "prefill-0" });
        Consumer = Start(model, blockSize, 128, consumer ?? new KvTransferConfig { KvRole = "kv_consumer", EngineId = "decode-0" }, consumerMaxNumSeqs);
    }

    public static AsyncLLMEngine Start(string model, int blockSize, int numBlocks, KvTransferConfig? config, int maxNumSeqs = 256) =>
        new(new LLMEngine(new EngineArgs
        {
            Model = TestPaths.Model(model), BlockSize = blockSize, NumKvBlocks = numBlocks, MaxModelLen = 512, MaxNumSeqs = maxNumSeqs,
            KvTransferConfig = config, Warn = _ => { },
        }));

    /// <summary>The prefill request of llm-d's flow: max_tokens 1, do_remote_decode; returns the params its response carries.</summary>
    public static async Task<KvTransferParams?> Prefill(AsyncLLMEngine producer, string id, int[] promptIds)
    {
        var p = new SamplingParams { Temperature = 0, MaxTokens = 1, KvTransferParams = new KvTransferParams { DoRemoteDecode = true } };
        RequestOutput? last = null;
        await foreach (var o in producer.GenerateAsync(id, PromptInput.FromTokenIds(promptIds), p))
            last = o;
        Assert.True(last!.Finished);
        return last.KvTransferParams;
    }

    public Task<KvTransferParams?> Prefill(string id, int[] promptIds) => Prefill(Producer, id, promptIds);

    /// <summary>The decode request: the whole greedy output, its prompt's KV pulled as the params say.</summary>
    public async Task<RequestOutput> Decode(string id, int[] promptIds, int maxTokens, KvTransferParams? remote, CancellationToken ct = default)
    {
        var p = new SamplingParams { Temperature = 0, MaxTokens = maxTokens, StopTokenIds = [8192, 8194], Logprobs = 1, KvTransferParams = remote };
        RequestOutput? last = null;
        await foreach (var o in Consumer.GenerateAsync(id, PromptInput.FromTokenIds(promptIds), p, ct))
            last = o;
        return last!;
    }

    /// <summary>Waits until the engine holds no requests and no blocks (held prefills released, pulls ended).</summary>
    public static async Task WaitIdle(AsyncLLMEngine engine, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (DateTime.UtcNow < until)
        {
            var s = engine.Stats;
            if (s.NumRunning == 0 && s.NumWaiting == 0 && s.KvCacheUsage == 0 && engine.Engine.KvConnector is not { NumPendingSends: > 0 } and not { NumLoading: > 0 })
                return;
            await Task.Delay(10);
        }
        var last = engine.Stats;
        Assert.Fail($"not idle: {last.NumRunning} running, {last.NumWaiting} waiting, KV usage {last.KvCacheUsage}, "
            + $"{engine.Engine.KvConnector?.NumPendingSends} held, {engine.Engine.KvConnector?.NumLoading} loading");
    }

    /// <summary>After the loop has stopped: every block is back in the free queue.</summary>
    public static void AssertNoLeakedBlocks(AsyncLLMEngine disposed)
    {
        var kv = disposed.Engine.KvCacheManager;
        Assert.Equal(0, kv.Usage);
        Assert.Equal(kv.Pool.NumUsableBlocks, kv.Pool.NumFreeBlocks);
    }

    public void DisposeProducer()
    {
        if (!_producerDisposed)
            Producer.Dispose();
        _producerDisposed = true;
    }

    public void Dispose()
    {
        DisposeProducer();
        if (!_consumerDisposed)
            Consumer.Dispose();
        _consumerDisposed = true;
    }
}
