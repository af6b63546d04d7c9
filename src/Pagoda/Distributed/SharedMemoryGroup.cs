using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using System.Text;

namespace Pagoda.Distributed;

/// <summary>
/// The processes of one tensor-parallel group on one host, meeting in a shared file (in /dev/shm where it exists):
/// rank 0 posts each message (a step's batch, or shutdown) for the workers, each rank reports its state and why it
/// failed, and collectives pass their data through double-buffered per-rank slots behind a counter barrier.
/// Every wait polls <c>peerFailure</c> so a dead peer ends it with its reason instead of a hang.
/// </summary>
public sealed unsafe class SharedMemoryGroup : ITensorParallelGroup
{
    /// <summary>Floats per rank per collective chunk: larger tensors pass in several rounds.</summary>
    public const int ChunkFloats = 1 << 20;
    /// <summary>Most ranks one group holds.</summary>
    public const int MaxRanks = 8;
    private const long Magic = 0x3150_5444_4147_4150;   // "PAGODTP1"
    private const int HeaderBytes = 4096, RankSlot = 64, RanksAt = 512, ErrorsAt = 1024, ErrorBytes = 384;
    private const long MessageAt = HeaderBytes;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly bool _owner;
    private Func<string?> _peerFailure = () => null;
    private long _collective;   // collectives this rank has entered
    private long _seenMessage;  // the last message a worker read

    // The message area is as large as the engine's largest step needs (its bound, BatchMessage.MaxBytes): containers
    // give /dev/shm 64 MB by default, so the file stays small (and sparse: only what is written takes memory).
    private readonly long _messageCapacity;

    private long CollectivesAt => MessageAt + _messageCapacity;

    private SharedMemoryGroup(string path, int rank, int size, bool create, long messageCapacity = 0)
    {
        (Path, RankIndex, Size, _owner) = (path, rank, size, create);
        if (!create)
        {
            using var header = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            using var view = header.CreateViewAccessor(0, HeaderBytes, MemoryMappedFileAccess.Read);
            messageCapacity = view.ReadInt64(64);
        }
        _messageCapacity = (messageCapacity + 63) / 64 * 64;
        long bytes = CollectivesAt + 2L * size * ChunkFloats * sizeof(float);
        _file = create
            ? MemoryMappedFile.CreateFromFile(path, FileMode.CreateNew, null, bytes, MemoryMappedFileAccess.ReadWrite)
            : MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        if (create)
        {
            *(int*)(_base + 8) = size;
            *(long*)(_base + 64) = _messageCapacity;
            Volatile.Write(ref *(long*)_base, Magic);
        }
        else if (Volatile.Read(ref *(long*)_base) != Magic || *(int*)(_base + 8) != size)
            throw new TensorParallelException($"'{path}' is not a tensor-parallel group of {size} ranks.");
    }

    /// <summary>Rank 0 makes the group's file, with room for messages of up to <paramref name="messageBytes"/>.</summary>
    public static SharedMemoryGroup Create(int size, long messageBytes = 1L << 20)
    {
        if (size < 2 || size > MaxRanks)
            throw new ArgumentOutOfRangeException(nameof(size), $"a shared-memory group holds 2 to {MaxRanks} ranks");
        string dir = Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
        return new SharedMemoryGroup(System.IO.Path.Combine(dir, $"pagoda-tp-{Environment.ProcessId}-{Guid.NewGuid():N}"), 0, size, create: true,
            Math.Max(messageBytes, 4096));
    }

    /// <summary>A worker joins the group rank 0 made.</summary>
    public static SharedMemoryGroup Join(string path, int rank, int size) =>
        rank < 1 || rank >= size ? throw new ArgumentOutOfRangeException(nameof(rank)) : new SharedMemoryGroup(path, rank, size, create: false);

    /// <summary>The shared file.</summary>
    public string Path { get; }

    /// <summary>This process's rank.</summary>
    public int RankIndex { get; }

    /// <summary>Ranks in the group.</summary>
    public int Size { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> WorkerArgs(int rank) => ["--group", Path, "--rank", $"{rank}", "--size", $"{Size}"];

    /// <inheritdoc />
    public ICommunicator Communicator() => new ShmCommunicator(this);

    /// <summary>
    /// Removes the file's name once every rank has it mapped (the mappings stay valid), so a group whose processes are
    /// killed leaves nothing behind in /dev/shm.
    /// </summary>
    public void Joined()
    {
        if (_owner)
            File.Delete(Path);
    }

    /// <summary>Polled while waiting: a message when a peer is gone (it ends the wait with that message).</summary>
    public void WatchPeers(Func<string?> peerFailure) => _peerFailure = peerFailure;

    private long* Arrived(int rank) => (long*)(_base + RanksAt + rank * RankSlot);
    private int* State(int rank) => (int*)(_base + RanksAt + rank * RankSlot + 8);

    /// <summary>A rank's state: 0 starting, 1 ready, 2 failed.</summary>
    public int StateOf(int rank) => Volatile.Read(ref *State(rank));

    /// <summary>This rank is ready for steps.</summary>
    public void ReportReady() => Volatile.Write(ref *State(RankIndex), 1);

    /// <summary>This rank failed: the reason (its first line, cut to fit) for rank 0 to report.</summary>
    public void ReportFailure(string reason)
    {
        var bytes = Encoding.UTF8.GetBytes(reason.Split('\n')[0]);
        int n = Math.Min(bytes.Length, ErrorBytes - 4);
        bytes.AsSpan(0, n).CopyTo(new Span<byte>(_base + ErrorsAt + RankIndex * ErrorBytes + 4, n));
        *(int*)(_base + ErrorsAt + RankIndex * ErrorBytes) = n;
        Volatile.Write(ref *State(RankIndex), 2);
    }

    /// <summary>The reason a rank reported when it failed, if it did.</summary>
    public string? FailureOf(int rank) => StateOf(rank) != 2 ? null
        : Encoding.UTF8.GetString(_base + ErrorsAt + rank * ErrorBytes + 4, *(int*)(_base + ErrorsAt + rank * ErrorBytes));

    /// <summary>Rank 0 posts a message (the previous one has been read: every rank passed a barrier since).</summary>
    public void Post(int kind, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > _messageCapacity)
            throw new TensorParallelException($"a step of {payload.Length} bytes does not fit the group's {_messageCapacity} byte message area.");
        payload.CopyTo(new Span<byte>(_base + MessageAt, payload.Length));
        *(int*)(_base + 24) = kind;
        *(int*)(_base + 28) = payload.Length;
        Interlocked.Increment(ref *(long*)(_base + 16));
    }

    /// <summary>A worker waits for rank 0's next message: its kind, and its bytes (valid until the next barrier).</summary>
    public int Receive(out ReadOnlySpan<byte> payload)
    {
        long next = _seenMessage + 1;
        WaitUntil(() => Volatile.Read(ref *(long*)(_base + 16)) >= next, idle: true);
        _seenMessage = next;
        payload = new ReadOnlySpan<byte>(_base + MessageAt, *(int*)(_base + 28));
        return *(int*)(_base + 24);
    }

    /// <summary>
    /// Enters the next collective: this rank's slot of its buffer set (the buffer sets alternate, so a slot is written
    /// again only after every rank has passed the barrier that follows the reads of its last use).
    /// </summary>
    public Span<float> BeginCollective(out long id)
    {
        id = ++_collective;
        return Slot(id, RankIndex);
    }

    /// <summary>Marks this rank's slot written and waits for every rank's.</summary>
    public void Barrier(long id)
    {
        Volatile.Write(ref *Arrived(RankIndex), id);
        for (int r = 0; r < Size; r++)
        {
            int rank = r;
            if (Volatile.Read(ref *Arrived(rank)) < id)
                WaitUntil(() => Volatile.Read(ref *Arrived(rank)) >= id, idle: false);
        }
    }

    /// <summary>A rank's slot of a collective's buffer set.</summary>
    public Span<float> Slot(long id, int rank) =>
        new((float*)(_base + CollectivesAt) + ((id & 1) * Size + rank) * (long)ChunkFloats, ChunkFloats);

    /// <inheritdoc />
    public void CheckPeers()
    {
        if (_peerFailure() is { } failure)
            throw new TensorParallelException(failure);
    }

    /// <summary>Waits for <paramref name="done"/>: spinning first, then yielding, then sleeping (an idle worker).</summary>
    public void WaitUntil(Func<bool> done, bool idle)
    {
        long start = Stopwatch.GetTimestamp(), nextCheck = start;
        var spin = new SpinWait();
        while (!done())
        {
            long now = Stopwatch.GetTimestamp();
            if (now >= nextCheck)
            {
                CheckPeers();
                nextCheck = now + Stopwatch.Frequency / 20;
            }
            double waited = (now - start) / (double)Stopwatch.Frequency;
            if (waited < 0.0005)
                spin.SpinOnce(sleep1Threshold: -1);
            else if (waited < (idle ? 0.005 : 0.05))
                Thread.Yield();
            else
                Thread.Sleep(1);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
        if (_owner)
            File.Delete(Path);
    }
}
