using System.Diagnostics;
using Pagoda.Distributed;
using Pagoda.Loading.Hub;

namespace Pagoda.Engine;

/// <summary>
/// A node after the first of a multi-node tensor-parallel group (vLLM's `serve --headless`): it serves nothing and runs
/// only its ranks, <see cref="EngineArgs.NodeRank"/> · (size / nodes) onwards, which join rank 0 over TCP at
/// <see cref="EngineArgs.MasterAddr"/>:<see cref="EngineArgs.MasterPort"/>. The node's first rank runs in this process,
/// the others in `tp-worker` processes; it returns when rank 0 ends the group (or fails), with the exit code.
/// </summary>
public static class HeadlessNode
{
    /// <summary>Runs this node's ranks of <paramref name="args"/>' group until rank 0 ends it.</summary>
    public static int Run(EngineArgs args, TextWriter error)
    {
        args.Validate();
        if (args.Nnodes < 2 || args.NodeRank < 1 || args.NodeRank >= args.Nnodes)
            throw new ArgumentException($"--headless runs a node after the first of a multi-node group: --nnodes above 1 and --node-rank from 1 "
                + $"(got node {args.NodeRank} of {args.Nnodes}).");
        // This node's copy of the model (downloaded if it is a repo id); rank 0 checks it is the same by its config.json.
        string folder = ModelResolver.Resolve(args.Model, args.Revision, args.DownloadDir, args.Hub ?? HubSettings.FromEnvironment(), args.DownloadProgress);
        int perNode = args.RanksPerNode, first = args.NodeRank * perNode;
        var log = TextWriter.Synchronized(error);
        var children = new List<Process>();
        try
        {
            for (int rank = first + 1; rank < first + perNode; rank++)
            {
                int r = rank;
                string[] join = [.. TcpGroup.JoinArgs(args.MasterAddr, args.MasterPort, rank, args.TensorParallelSize, args.TensorParallelJoinTimeout),
                    "--model-folder", folder, "--parent", $"{Environment.ProcessId}"];
                children.Add(TensorParallelWorkers.StartProcess(args.WorkerCommand, join, rank, line => log.WriteLine($"rank {r}: {line}")));
            }
            log.WriteLine($"node {args.NodeRank} of {args.Nnodes}: ranks {first} to {first + perNode - 1} of {args.TensorParallelSize} joining rank 0 at {args.MasterAddr}:{args.MasterPort}");
            return TensorParallelWorker.Run(() => TcpGroup.Connect(args.MasterAddr, args.MasterPort, first, args.TensorParallelSize, args.TensorParallelJoinTimeout),
                first, null, folder, log, args.BackendProviders);
        }
        finally
        {
            foreach (var c in children)
                TensorParallelWorkers.Stop(c, TimeSpan.FromSeconds(5));
        }
    }
}
