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
/// handed out dynamically, so a worker descheduled by another process does not stall the op; which
/// worker runs a chunk never changes its result, because every kernel fixes its reduction order per
/// output element. Runs are serialized: an engine that finds the pool busy runs its op inline.
/// </summary>
internal sealed class WorkerPool
{
    private const int SpinIterations = 20_000;

    private static readonly Lazy<WorkerPool> SharedPool = new(() => new WorkerPool(DefaultThreads()));

    private readonly object _gate = new();
    private readonly object _runLock = new();
    private PoolJob? _job;
    private int _chunks;
    private int _next;
    private int _active;
    private long _generation;
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

    /// <summary>The process-wide pool (PAGODA_CPU_THREADS overrides the core count).</summary>
    public static WorkerPool Shared => SharedPool.Value;

    /// <summary>Workers including the calling thread.</summary>
    public int Size { get; }

    private static int DefaultThreads() =>
        int.TryParse(Environment.GetEnvironmentVariable("PAGODA_CPU_THREADS"), out int n) && n > 0 ? n : Environment.ProcessorCount;

    /// <summary>Runs chunks 0 .. <paramref name="chunks"/> - 1 of <paramref name="job"/> and returns when all are done.</summary>
    public void Run(PoolJob job, int chunks)
    {
        if (chunks <= 0)
            return;
        if (chunks == 1 || Size == 1 || !Monitor.TryEnter(_runLock))
        {
            for (int c = 0; c < chunks; c++)
                job.Execute(c, 0);
            return;
        }
        try
        {
            _job = job;
            _chunks = chunks;
            _next = 0;
            _error = null;
            Volatile.Write(ref _active, Size - 1);
            lock (_gate)
            {
                _generation++;
                Monitor.PulseAll(_gate);
            }
            Drain(0);
            var spin = new SpinWait();
            while (Volatile.Read(ref _active) > 0)
                spin.SpinOnce(sleep1Threshold: -1);
            _job = null;
            if (_error is { } e)
                throw new AggregateException("a CPU kernel failed", e);
        }
        finally
        {
            Monitor.Exit(_runLock);
        }
    }

    private void Drain(int worker)
    {
        var job = _job!;
        int c;
        while ((c = Interlocked.Increment(ref _next) - 1) < _chunks)
        {
            try
            {
                job.Execute(c, worker);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
        }
    }

    private void WorkerLoop(int worker)
    {
        long seen = 0;
        while (true)
        {
            // Spin first: the next op of a decode step usually follows within microseconds.
            int i = 0;
            while (Volatile.Read(ref _generation) == seen && i < SpinIterations)
            {
                Thread.SpinWait(8);
                i++;
            }
            if (Volatile.Read(ref _generation) == seen)
            {
                lock (_gate)
                {
                    while (_generation == seen)
                        Monitor.Wait(_gate);
                }
            }
            seen = Volatile.Read(ref _generation);
            Drain(worker);
            Interlocked.Decrement(ref _active);
        }
    }
}
