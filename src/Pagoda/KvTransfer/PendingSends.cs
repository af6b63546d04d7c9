namespace Pagoda.KvTransfer;

/// <summary>
/// The producer's finished prefills whose blocks wait for a consumer (vLLM's reqs_need_send with their expiry), shared
/// between the engine's thread (which holds and frees the blocks) and the listener's sessions (which read them). A hold
/// ends once: when a pull of it ends (however it ends: the consumer does not retry) or when its deadline passes with
/// no pull under way; the engine then frees the blocks (<see cref="TakeReleased"/>). A pull under way is never cut
/// short by the deadline, since freeing blocks while a session reads them would send another request's KV.
/// </summary>
internal sealed class PendingSends
{
    private sealed class Entry(int[] blockIds, ulong promptHash, long deadline)
    {
        public int[] BlockIds { get; } = blockIds;
        public ulong PromptHash { get; } = promptHash;
        public long Deadline { get; } = deadline;
        public bool Sending { get; set; }
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new();
    private readonly List<string> _released = [];

    /// <summary>Monotonic milliseconds, what deadlines are measured in.</summary>
    public static long Now => Environment.TickCount64;

    /// <summary>
    /// Holds a request's blocks until <paramref name="deadline"/> (see <see cref="Now"/>). The scheduler holds one set of
    /// blocks per id and frees it only after this hold is released, so an id is never added twice.
    /// </summary>
    public void Add(string requestId, int[] blockIds, ulong promptHash, long deadline)
    {
        lock (_lock)
            _entries.Add(requestId, new Entry(blockIds, promptHash, deadline));
    }

    /// <summary>
    /// Starts a pull of <paramref name="blockIds"/>, which must all be held for the request whose prompt has
    /// <paramref name="promptHash"/>; returns why not otherwise. Ok obliges the caller to <see cref="EndSend"/>.
    /// </summary>
    public (KvPullStatus Status, string? Message) BeginSend(string requestId, ulong promptHash, int[] blockIds)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(requestId, out var e))
                return (KvPullStatus.UnknownRequest, $"no KV blocks are held for request '{requestId}' (never, already pulled, or released after the timeout)");
            if (e.Sending)
                return (KvPullStatus.Busy, $"the KV blocks of request '{requestId}' are being pulled already");
            if (e.PromptHash != promptHash)
                return (KvPullStatus.PromptMismatch, $"request '{requestId}' prefilled another prompt; a decode must carry its prefill's prompt");
            var held = e.BlockIds.ToHashSet();
            if (blockIds.FirstOrDefault(b => !held.Contains(b), -1) is int bad and >= 0)
                return (KvPullStatus.BadBlocks, $"request '{requestId}' does not hold block {bad}");
            e.Sending = true;
            return (KvPullStatus.Ok, null);
        }
    }

    /// <summary>Ends a pull: the hold is over and its blocks go back to the engine.</summary>
    public void EndSend(string requestId)
    {
        lock (_lock)
        {
            if (_entries.Remove(requestId))
                _released.Add(requestId);
        }
    }

    /// <summary>The holds that ended (pulled, or expired by <paramref name="now"/> with no pull under way), forgotten here.</summary>
    public List<string> TakeReleased(long now)
    {
        lock (_lock)
        {
            var taken = new List<string>(_released);
            _released.Clear();
            foreach (var (id, e) in _entries)
            {
                if (!e.Sending && e.Deadline <= now)
                    taken.Add(id);
            }
            foreach (string id in taken)
                _entries.Remove(id);
            return taken;
        }
    }

    /// <summary>Whether <see cref="TakeReleased"/> would return anything at <paramref name="now"/>.</summary>
    public bool HasReleased(long now)
    {
        lock (_lock)
            return _released.Count > 0 || _entries.Values.Any(e => !e.Sending && e.Deadline <= now);
    }

    /// <summary>The earliest deadline of a hold no pull is under way for, or null.</summary>
    public long? NextDeadline
    {
        get
        {
            lock (_lock)
                return _entries.Values.Where(e => !e.Sending).Select(e => (long?)e.Deadline).Min();
        }
    }

    /// <summary>Holds not yet released.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _entries.Count;
        }
    }
}
