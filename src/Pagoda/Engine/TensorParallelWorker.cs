using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Pagoda.Backends.Cpu;
using Pagoda.Distributed;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Engine;

/// <summary>
/// A tensor-parallel worker process (vLLM's headless worker): joins rank 0's group, loads its shard of the job's
/// model and a KV pool of the job's block count on the job's device (its node's GPU of its rank, through one of
/// <c>providers</c>), prepares it as rank 0 does, then runs each step rank 0 posts until told to stop. Only rank 0
/// samples: a worker's forwards end in the collectives that hand rank 0 its logits.
/// </summary>
public static class TensorParallelWorker
{
    /// <summary>
    /// Runs rank <paramref name="rank"/> of the group <paramref name="join"/> joins; the process's exit code. The model is
    /// the job's folder, or <paramref name="modelFolder"/> (another node's copy of it, checked against rank 0's config);
    /// the worker ends when the process <paramref name="parentPid"/> (rank 0, or its node's headless process) exits.
    /// </summary>
    public static int Run(Func<ITensorParallelGroup> join, int rank, int? parentPid, string? modelFolder, TextWriter error,
        IReadOnlyList<IBackendProvider> providers)
    {
        ITensorParallelGroup? group = null;
        try
        {
            group = join();
            if (parentPid is int pid)
            {
                var parent = Process.GetProcessById(pid);
                group.WatchPeers(() => parent.HasExited ? $"the process that started this rank ({pid}) exited" : null);
            }
            if (group.Receive(out var payload) != BatchMessage.Job)
                throw new TensorParallelException("the group's first message is not a job.");
            var job = JsonSerializer.Deserialize<WorkerJob>(payload) ?? throw new TensorParallelException("an empty job.");
            string path = modelFolder ?? job.ModelFolder;
            var folder = ModelFolder.Open(path);
            if (ConfigSha256(path) != job.ConfigSha256)
                throw new TensorParallelException($"this rank's {Path.Combine(path, "config.json")} differs from rank 0's.");
            var provider = BackendProviders.Resolve(job.Device, providers);
            var args = new EngineArgs { Model = path, DType = job.DType, Backend = job.Backend, BlockSize = job.BlockSize };
            using var backend = provider?.CreateBackend(args, folder.Config, job.MaxModelLen, rank % job.RanksPerNode) ?? new CpuBackend(job.Backend);
            var comm = job.CollectivesId is { } id && provider != null ? provider.CreateCommunicator(backend, group, id) : group.Communicator();
            using var weights = LLMEngine.OpenWeights(folder, job.LoadFormat, job.DType);
            var shard = ModelRegistry.Create(folder.Config, weights, backend, job.Quantization, job.MaxModelLen, comm);
            weights.ReleaseDecodedMxfp4();
            using var cache = backend.AllocateKvCache(folder.Config.NumLayers, job.NumBlocks, job.BlockSize, shard.KvWidth);
            group.ReportReady();
            // Graphs warm up and capture with rank 0's collectives; the prepared model disposes the shard it wraps.
            using var model = provider?.Prepare(shard, backend, cache, job.Execution) ?? shard;
            while (group.Receive(out payload) == BatchMessage.Step)
                model.Forward(BatchMessage.Decode(payload), cache);
            return 0;
        }
        catch (Exception e)
        {
            string reason = e is TensorParallelException or ModelLoadException or ArgumentException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            group?.ReportFailure(reason);
            error.WriteLine($"tensor-parallel worker {rank}: {reason}");
            return 1;
        }
        finally
        {
            group?.Dispose();
        }
    }

    /// <summary>The model's config.json as a hash, so every rank can check it loads the model rank 0 loaded.</summary>
    public static string ConfigSha256(string folder) =>
        Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, "config.json"))));
}
