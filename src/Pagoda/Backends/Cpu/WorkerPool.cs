namespace Pagoda.Backends.Cpu;

/// <summary>One parallel kernel invocation: <see cref="Execute"/> runs chunk <c>chunk</c> on worker <c>worker</c>.</summary>
internal abstract class PoolJob
{
    /// <summary>Runs one chunk. Workers are numbered 0 .. pool size - 1 (0 is the calling thread).</summary>
    public abstract void Execute(int chunk, int worker);
}

/// <summary>
/// Persistent workers, one per core: the calling thread plus (cores - 1) background threads that spin
/// briefly between ops (decode issues a few hundred small ops per token) and then sleep. Chunks are
/// claimed dynamically and the caller waits only for chunks already claimed, never for a worker to wake
/// up: on a loaded machine a descheduled worker costs nothing, the caller just does more chunks. Which
/// worker runs a chunk never changes its result, because every kernel fixes its reduction order per
/// output element. Runs are serialized: an engine that finds the pool busy runs its op inline.
/// </summary>
internal sealed class WorkerPool
{
    private const int SpinIterations = 20_000;
    private const int CountBits = 20;
    private const long CountMask = (1L << CountBits) - 1;

    // One pool per thread count for the whole process: threads are a process resource, and backends share them.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, Lazy<WorkerPool>> Pools = new();

    private readonly object _gate = new();
    private readonly object _runLock = new();
    private PoolJob? _job;
    // [generation:24][chunks:20][next:20], changed only by compare-exchange, so a worker can never claim a
    // chunk index of one run against the chunk count or job of another.
    private long _state;
    private int _done;
    private Exception? _error;

    private WorkerPool(int threads)
    {
        Size = Math.Max(1, threads);
        for (int i = 1; i < Size; i++)
        {
            int worker = i;
            new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = $"pagoda-cpu-{worker}" }.Start();
        }
    }

    /// <summary>The process-wide pool of <paramref name="threads"/> workers (made on first use).</summary>
    public static WorkerPool ForThreads(int threads) =>
        Pools.GetOrAdd(Math.Max(1, threads), n => new Lazy<WorkerPool>(() => new WorkerPool(n))).Value;

    /// <summary>Workers including the calling thread.</summary>
    public int Size { get; }

    /// <summary>Runs chunks 0 .. <paramref name="chunks"/> - 1 of <paramref name="job"/> and returns when all are done.</summary>
    public void Run(PoolJob job, int chunks)
    {
        if (chunks <= 0)
            return;
        if (chunks == 1 || Size == 1 || chunks > CountMask || !Monitor.TryEnter(_runLock))
        {
            for (int c = 0; c < chunks; c++)
                job.Execute(c, 0);
            return;
        }
        try
        {
            _job = job;
            _error = null;
            Volatile.Write(ref _done, 0);
            long generation = ((Volatile.Read(ref _state) >> (2 * CountBits)) + 1) & 0xFFFFFF;
            lock (_gate)
            {
                Volatile.Write(ref _state, (generation << (2 * CountBits)) | ((long)chunks << CountBits));
                Monitor.PulseAll(_gate);
            }
            while (TryClaim(out int chunk))
                Execute(job, chunk, 0);
            // Only chunks other workers already hold remain.
            while (Volatile.Read(ref _done) < chunks)
                Thread.SpinWait(4);
            if (_error is { } e)
                throw new AggregateException("a CPU kernel failed", e);
        }
        finally
        {
            _job = null;
            Monitor.Exit(_runLock);
        }
    }

    private bool TryClaim(out int chunk)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            long next = s & CountMask, chunks = (s >> CountBits) & CountMask;
            if (next >= chunks)
            {
                chunk = -1;
                return false;
            }
            if (Interlocked.CompareExchange(ref _state, s + 1, s) == s)
            {
                chunk = (int)next;
                return true;
            }
        }
    }

    private void Execute(PoolJob job, int chunk, int worker)
    {
        try
        {
            job.Execute(chunk, worker);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
        }
        Interlocked.Increment(ref _done);
    }

    private bool HasWork()
    {
        long s = Volatile.Read(ref _state);
        return (s & CountMask) < ((s >> CountBits) & CountMask);
    }

    private void WorkerLoop(int worker)
    {
        while (true)
        {
            // Spin first: the next op of a decode step usually follows within microseconds.
            for (int i = 0; i < SpinIterations && !HasWork(); i++)
                Thread.SpinWait(8);
            if (!HasWork())
            {
                lock (_gate)
                {
                    while (!HasWork())
                        Monitor.Wait(_gate);
                }
            }
            // The claim succeeds only while its run is current, so the job read after it is that run's.
            while (TryClaim(out int chunk))
                Execute(_job!, chunk, worker);
        }
    }
}
