using System.Diagnostics;
using System.Text.Json;
using Pagoda.Backends;
using Pagoda.Distributed;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Engine;

/// <summary>
/// What every tensor-parallel worker loads, as rank 0 resolved it (the first message of the group): the model, its KV
/// pool, the device (each rank takes its node's GPU <c>rank % RanksPerNode</c>), the device's collectives to join (NCCL's
/// id; null on the CPU, whose collectives run over the group) and the execution its shard is prepared for.
/// </summary>
public sealed record WorkerJob(
    string ModelFolder, string LoadFormat, string DType, string? Quantization, int MaxModelLen, int NumBlocks, int BlockSize,
    BackendOptions Backend, string ConfigSha256, string Device, string? CollectivesId, ExecutionShape Execution, int RanksPerNode);

/// <summary>
/// Rank 0's side of a tensor-parallel group: it posts the job, starts one worker process per other rank of its node (the
/// same program, `tp-worker`; other nodes start theirs with `serve --headless`), waits until every rank has loaded its
/// shard, then posts every step's batch before running its own shard. A worker that fails or exits ends rank 0's wait
/// with its reason (its report, else its last stderr lines).
/// </summary>
internal sealed class TensorParallelWorkers : IDisposable
{
    private readonly ITensorParallelGroup _group;
    private readonly Process[] _workers;   // ranks 1..localRanks-1
    private readonly Queue<string>[] _stderr;

    private TensorParallelWorkers(ITensorParallelGroup group, Process[] workers, Queue<string>[] stderr) =>
        (_group, _workers, _stderr) = (group, workers, stderr);

    /// <summary>
    /// Rank 0's group for <paramref name="args"/> (null below two ranks): on one node the ranks meet in shared memory,
    /// its message area as large as a step can be (the token budget, or a whole prompt when an embedding runs outside
    /// the scheduler); over several nodes, over TCP at the master address.
    /// </summary>
    public static ITensorParallelGroup? CreateGroup(EngineArgs args, int maxModelLen)
    {
        if (args.NodeRank != 0)
            throw new ArgumentException($"node {args.NodeRank} of a multi-node group runs only workers: start it with `pagoda serve MODEL --headless`.");
        return args.TensorParallelSize < 2 ? null
            : args.Nnodes > 1 ? TcpGroup.Listen(args.MasterAddr, args.MasterPort, args.TensorParallelSize, args.TensorParallelJoinTimeout)
            : SharedMemoryGroup.Create(args.TensorParallelSize,
                BatchMessage.MaxBytes(Math.Max(args.MaxNumBatchedTokens, maxModelLen), args.MaxNumSeqs, maxModelLen, args.BlockSize));
    }

    /// <summary>
    /// Starts this node's workers (ranks 1 to <paramref name="localRanks"/> - 1) and returns once every rank of the group
    /// is ready; throws with the first one's failure.
    /// </summary>
    public static TensorParallelWorkers Start(ITensorParallelGroup group, int localRanks, WorkerJob job, IReadOnlyList<string>? command)
    {
        group.Post(BatchMessage.Job, JsonSerializer.SerializeToUtf8Bytes(job));
        var workers = new List<Process>();
        var stderr = new Queue<string>[localRanks - 1];
        try
        {
            for (int rank = 1; rank < localRanks; rank++)
            {
                var lines = stderr[rank - 1] = new Queue<string>();
                workers.Add(StartProcess(command, [.. group.WorkerArgs(rank), "--parent", $"{Environment.ProcessId}"], rank, line =>
                {
                    lock (lines)
                    {
                        lines.Enqueue(line);
                        if (lines.Count > 5)
                            lines.Dequeue();
                    }
                }));
            }
            var self = new TensorParallelWorkers(group, [.. workers], stderr);
            group.WatchPeers(self.FirstFailure);
            group.WaitUntil(() => Enumerable.Range(1, group.Size - 1).All(r => group.StateOf(r) != 0), idle: true);
            if (self.FirstFailure() is { } failure)
                throw new TensorParallelException(failure);
            group.Joined();   // every rank has it mapped, or has connected
            return self;
        }
        catch
        {
            foreach (var p in workers)
                Stop(p, TimeSpan.Zero);
            throw;
        }
    }

    /// <summary>Starts a `tp-worker` process of <paramref name="command"/> (null: this program) with <paramref name="args"/>; hands each line it prints to <paramref name="output"/>.</summary>
    internal static Process StartProcess(IReadOnlyList<string>? command, IEnumerable<string> args, int rank, Action<string> output)
    {
        var cmd = command ?? DefaultCommand();
        var info = new ProcessStartInfo(cmd[0]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in cmd.Skip(1).Concat(args))
            info.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(info) ?? throw new TensorParallelException("no process");
        }
        catch (Exception e) when (e is not TensorParallelException)
        {
            throw new TensorParallelException($"could not start tensor-parallel worker {rank} ({string.Join(' ', cmd)}): {e.Message}");
        }
        void Keep(object _, DataReceivedEventArgs e)
        {
            if (e.Data != null)
                output(e.Data);
        }
        p.ErrorDataReceived += Keep;
        p.OutputDataReceived += Keep;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    /// <summary>Rank 0 posts a step's batch; the workers start their shards of it.</summary>
    public void Post(ForwardBatch batch) => _group.Post(BatchMessage.Step, BatchMessage.Encode(batch));

    private string? FirstFailure()
    {
        for (int rank = 1; rank < _group.Size; rank++)
        {
            if (_group.FailureOf(rank) is { } reason)
                return $"tensor-parallel worker {rank} failed: {reason}";
        }
        for (int i = 0; i < _workers.Length; i++)
        {
            int rank = i + 1;
            if (_workers[i].HasExited)
            {
                _workers[i].WaitForExit();   // without a timeout it also waits for the redirected output to drain
                string tail;
                lock (_stderr[i])
                    tail = string.Join(" | ", _stderr[i]);
                return $"tensor-parallel worker {rank} exited with code {_workers[i].ExitCode}" + (tail.Length > 0 ? $": {tail}" : "");
            }
        }
        return null;
    }

    // This program again: its apphost, or `dotnet` with the entry assembly.
    private static string[] DefaultCommand()
    {
        string exe = Environment.ProcessPath ?? throw new TensorParallelException("this process's path is unknown: set EngineArgs.WorkerCommand.");
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" && System.Reflection.Assembly.GetEntryAssembly()?.Location is { Length: > 0 } dll
            ? [exe, dll, "tp-worker"] : [exe, "tp-worker"];
    }

    internal static void Stop(Process p, TimeSpan grace)
    {
        try
        {
            if (!p.WaitForExit(grace))
                p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }
        p.Dispose();
    }

    /// <summary>Tells the workers to exit and waits for them (killing any that do not within a few seconds).</summary>
    public void Dispose()
    {
        _group.Post(BatchMessage.Shutdown, []);
        foreach (var p in _workers)
            Stop(p, TimeSpan.FromSeconds(5));
        _group.Dispose();
    }
}

/// <summary>
/// Rank 0's model: each forward posts the batch to the workers, then runs rank 0's shard alongside theirs (on a device,
/// the shard as the provider prepared it: a graph replay every rank makes alike).
/// </summary>
internal sealed class TensorParallelModel(IModel shard, TensorParallelWorkers workers) : IModel
{
    public ModelConfig Config => shard.Config;

    public int KvWidth => shard.KvWidth;

    public long WeightBytes => shard.WeightBytes;

    public float[] Forward(ForwardBatch batch, PagedKvCache cache) => ForwardAsync(batch, cache).Wait();

    public IForwardHandle ForwardAsync(ForwardBatch batch, PagedKvCache cache)
    {
        workers.Post(batch);
        try
        {
            return shard.ForwardAsync(batch, cache);
        }
        catch (Exception e) when (e is not TensorParallelException)
        {
            // The workers are inside this forward's collectives, which rank 0 left part way: the group is out of step.
            throw new TensorParallelException($"rank 0's forward failed, leaving the tensor-parallel group out of step: {e.Message}");
        }
    }

    public void Dispose()
    {
        shard.Dispose();
        workers.Dispose();
    }
}
