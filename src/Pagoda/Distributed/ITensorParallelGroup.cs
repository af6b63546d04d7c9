namespace Pagoda.Distributed;

/// <summary>
/// How the processes of one tensor-parallel group meet: shared memory on one host (<see cref="SharedMemoryGroup"/>) or
/// TCP to rank 0 across nodes (<see cref="TcpGroup"/>). Rank 0 posts messages (the job, each step's batch, shutdown)
/// that the workers receive in order; workers report ready or failed; the collectives run over the same transport.
/// </summary>
public interface ITensorParallelGroup : IDisposable
{
    /// <summary>This process's rank.</summary>
    int RankIndex { get; }

    /// <summary>Ranks in the group.</summary>
    int Size { get; }

    /// <summary>The arguments after `tp-worker` that make a process on this host join as <paramref name="rank"/>.</summary>
    IReadOnlyList<string> WorkerArgs(int rank);

    /// <summary>This rank's collectives over the group.</summary>
    ICommunicator Communicator();

    /// <summary>Rank 0 posts a message to every worker.</summary>
    void Post(int kind, ReadOnlySpan<byte> payload);

    /// <summary>A worker waits for rank 0's next message: its kind, and its bytes (valid until the next message or collective).</summary>
    int Receive(out ReadOnlySpan<byte> payload);

    /// <summary>This rank is ready for steps.</summary>
    void ReportReady();

    /// <summary>This rank failed: the reason (its first line) for rank 0 to report.</summary>
    void ReportFailure(string reason);

    /// <summary>Rank 0's view of a rank: 0 starting (or not yet joined), 1 ready, 2 failed.</summary>
    int StateOf(int rank);

    /// <summary>The reason a rank reported when it failed, if it did.</summary>
    string? FailureOf(int rank);

    /// <summary>Polled while waiting: a message when a peer is gone (it ends the wait with that message).</summary>
    void WatchPeers(Func<string?> peerFailure);

    /// <summary>Throws <see cref="TensorParallelException"/> when a peer is gone (what a wait checks as it polls).</summary>
    void CheckPeers();

    /// <summary>Waits for <paramref name="done"/>, ending with <see cref="TensorParallelException"/> when a peer is gone.</summary>
    void WaitUntil(Func<bool> done, bool idle);

    /// <summary>Rank 0: every rank has joined; what only joining needed can go (the shared file's name).</summary>
    void Joined();
}
