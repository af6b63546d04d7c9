using System.Runtime.CompilerServices;
using Pagoda.KvCache;

namespace Pagoda.Engine;

/// <summary>
/// vLLM's data parallelism on one host (--data-parallel-size N): N engine replicas, each with the whole model, its own
/// KV cache and scheduler, behind one server. Each request goes to the replica with the lowest load, vLLM's score
/// waiting · 4 + running (ties to the lower rank), where a request handed to a replica counts as waiting at once, until
/// the replica's own counts report it running.
/// </summary>
public sealed class DataParallelEngine : IEngineClient
{
    private readonly AsyncLLMEngine[] _replicas;

    /// <summary>Starts <see cref="EngineArgs.DataParallelSize"/> replicas, each with <see cref="ForRank"/>'s arguments.</summary>
    public DataParallelEngine(EngineArgs args)
    {
        args.Validate();
        var started = new List<AsyncLLMEngine>();
        try
        {
            for (int r = 0; r < args.DataParallelSize; r++)
                started.Add(new AsyncLLMEngine(new LLMEngine(ForRank(args, r))));
        }
        catch
        {
            foreach (var e in started)
                e.Dispose();
            throw;
        }
        _replicas = [.. started];
    }

    /// <summary>
    /// Replica <paramref name="rank"/>'s arguments, those of one engine (size 1): GPU <paramref name="rank"/> (the CUDA
    /// backend takes the rank as its device), its share of the CPU threads, and its own ports, as vLLM offsets them by the
    /// rank: the KV events' endpoint and replay endpoint, and the KV transfer port (with the rank in its engine id).
    /// </summary>
    public static EngineArgs ForRank(EngineArgs args, int rank)
    {
        int n = args.DataParallelSize;
        if (n == 1)
            return args;
        var backend = args.ResolvedBackendOptions();
        return args with
        {
            DataParallelSize = 1,
            DataParallelRank = rank,
            Backend = backend with { CpuThreads = Math.Max(1, backend.NumCpuThreads / n) },
            KvEventsConfig = args.KvEventsConfig is { } ev
                ? ev with { Endpoint = OffsetPort(ev.Endpoint, rank), ReplayEndpoint = ev.ReplayEndpoint is { } re ? OffsetPort(re, rank) : null }
                : null,
            KvTransferConfig = args.KvTransferConfig is { } kv
                ? kv with { KvPort = kv.KvPort == 0 ? 0 : kv.KvPort + rank, EngineId = $"{kv.EngineId}-dp{rank}" }
                : null,
        };
    }

    // tcp://host:port with the port moved up by `by` (ipc and inproc endpoints get a suffix instead).
    private static string OffsetPort(string endpoint, int by)
    {
        int colon = endpoint.LastIndexOf(':');
        return endpoint.StartsWith("tcp://", StringComparison.Ordinal) && int.TryParse(endpoint[(colon + 1)..], out int port)
            ? $"{endpoint[..colon]}:{port + by}"
            : $"{endpoint}_dp{by}";
    }

    /// <inheritdoc />
    public LLMEngine Engine => _replicas[0].Engine;

    /// <inheritdoc />
    public IReadOnlyList<AsyncLLMEngine> Replicas => _replicas;

    /// <inheritdoc />
    public EngineStats Stats
    {
        get
        {
            var all = _replicas.Select(r => r.Stats).ToList();
            return new EngineStats(all.Sum(s => s.NumRunning), all.Sum(s => s.NumWaiting), all.Average(s => s.KvCacheUsage),
                new PrefixCacheStats(all.Sum(s => s.PrefixCache.QueriedTokens), all.Sum(s => s.PrefixCache.HitTokens)),
                all.Sum(s => s.NumPreemptions), all.Sum(s => s.PromptTokens), all.Sum(s => s.GenerationTokens))
            {
                NumFirstTokens = all.Sum(s => s.NumFirstTokens),
            };
        }
    }

    /// <inheritdoc />
    public int NumWaiting => _replicas.Sum(r => r.NumWaiting);

    /// <inheritdoc />
    public Exception? Failure => _replicas.Select(r => r.Failure).FirstOrDefault(f => f != null);

    /// <summary>The replica the next request goes to: the lowest waiting · 4 + running.</summary>
    public AsyncLLMEngine Pick()
    {
        var best = _replicas[0];
        int bestScore = int.MaxValue;
        foreach (var r in _replicas)
        {
            int unfinished = r.NumUnfinished, running = Math.Min(r.Stats.NumRunning, unfinished);
            int score = (unfinished - running) * 4 + running;
            if (score < bestScore)
                (best, bestScore) = (r, score);
        }
        return best;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<RequestOutput> GenerateAsync(string requestId, PromptInput prompt, SamplingParams samplingParams,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The first MoveNextAsync adds the request before it awaits anything, so under the lock the pick and the add
        // happen together and the next pick sees this request's load: a burst spreads over the replicas.
        IAsyncEnumerator<RequestOutput> e;
        ValueTask<bool> first;
        lock (_replicas)
        {
            e = Pick().GenerateAsync(requestId, prompt, samplingParams, cancellationToken).GetAsyncEnumerator(cancellationToken);
            first = e.MoveNextAsync();
        }
        try
        {
            for (bool more = await first; more; more = await e.MoveNextAsync())
                yield return e.Current;
        }
        finally
        {
            await e.DisposeAsync();
        }
    }

    /// <inheritdoc />
    public Task<float[]> EmbedAsync(string requestId, PromptInput prompt, PoolingType pooling, CancellationToken cancellationToken = default) =>
        Pick().EmbedAsync(requestId, prompt, pooling, cancellationToken);

    /// <inheritdoc />
    public async Task<bool> ResetPrefixCacheAsync(CancellationToken cancellationToken = default)
    {
        bool all = true;
        foreach (var r in _replicas)
            all &= await r.ResetPrefixCacheAsync(cancellationToken);
        return all;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var r in _replicas)
            r.Dispose();
    }
}
