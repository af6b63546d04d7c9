using System.CommandLine;
using Pagoda.Engine;

namespace Pagoda.Cli.Commands;

/// <summary>
/// `pagoda tp-worker`: a tensor-parallel worker that rank 0 starts (hidden: nobody types it). It joins rank 0's
/// shared-memory group and runs its shard of every step until rank 0 ends the group or exits.
/// </summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var group = new Option<string>("--group") { Required = true, Description = "The group's shared file." };
        var rank = new Option<int>("--rank") { Required = true, Description = "This worker's rank (1 and up)." };
        var size = new Option<int>("--size") { Required = true, Description = "Ranks in the group." };
        var parent = new Option<int>("--parent") { Required = true, Description = "Rank 0's process id." };
        var cmd = new Command("tp-worker", "A tensor-parallel worker (started by rank 0).") { Hidden = true };
        foreach (var o in new Option[] { group, rank, size, parent })
            cmd.Add(o);
        cmd.SetAction(r => TensorParallelWorker.Run(r.GetValue(group)!, r.GetValue(rank), r.GetValue(size), r.GetValue(parent),
            r.InvocationConfiguration.Error));
        return cmd;
    }
}
