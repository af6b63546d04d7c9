using System.CommandLine;
using Pagoda.Distributed;
using Pagoda.Engine;

namespace Pagoda.Cli.Commands;

/// <summary>
/// `pagoda tp-worker`: a tensor-parallel worker that rank 0 (or a headless node) starts (hidden: nobody types it). It
/// joins rank 0's shared-memory group (--group) or connects to rank 0 over TCP (--master-addr, --master-port), and runs
/// its shard of every step until rank 0 ends the group or exits.
/// </summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var group = new Option<string?>("--group") { Description = "The group's shared file (one node)." };
        var addr = new Option<string?>("--master-addr") { Description = "Rank 0's address (several nodes)." };
        var port = new Option<int>("--master-port") { Description = "Rank 0's port (several nodes)." };
        var timeout = new Option<int>("--join-timeout") { Description = "Seconds to keep trying to reach rank 0.", DefaultValueFactory = _ => 600 };
        var rank = new Option<int>("--rank") { Required = true, Description = "This worker's rank (1 and up)." };
        var size = new Option<int>("--size") { Required = true, Description = "Ranks in the group." };
        var parent = new Option<int?>("--parent") { Description = "The process that started this one: the worker ends when it does." };
        var folder = new Option<string?>("--model-folder") { Description = "This node's copy of the model (default: rank 0's folder)." };
        var cmd = new Command("tp-worker", "A tensor-parallel worker (started by rank 0 or a headless node).") { Hidden = true };
        foreach (var o in new Option[] { group, addr, port, timeout, rank, size, parent, folder })
            cmd.Add(o);
        cmd.SetAction(r =>
        {
            var (path, master) = (r.GetValue(group), r.GetValue(addr));
            if ((path == null) == (master == null))
            {
                r.InvocationConfiguration.Error.WriteLine("tp-worker: give --group or --master-addr with --master-port.");
                return 2;
            }
            int n = r.GetValue(rank), total = r.GetValue(size);
            Func<ITensorParallelGroup> join = path != null
                ? () => SharedMemoryGroup.Join(path, n, total)
                : () => TcpGroup.Connect(master!, r.GetValue(port), n, total, TimeSpan.FromSeconds(r.GetValue(timeout)));
            return TensorParallelWorker.Run(join, n, r.GetValue(parent), r.GetValue(folder), r.InvocationConfiguration.Error,
                [Pagoda.Cuda.CudaProvider.Instance]);
        });
        return cmd;
    }
}
