using System.Text.Json;

namespace Pagoda.KvEvents;

/// <summary>
/// vLLM's KVEventsConfig (vllm/config/kv_events.py): whether the KV cache publishes its prefix-cache changes,
/// and where. The same field names and defaults, read from the same JSON (`--kv-events-config`).
/// </summary>
public sealed record KvEventsConfig
{
    /// <summary>The JSON keys there are, in vLLM's order.</summary>
    public static readonly string[] Fields =
        ["enable_kv_cache_events", "publisher", "endpoint", "replay_endpoint", "buffer_steps", "hwm", "max_queue_size", "topic"];

    /// <summary>Record prefix-cache changes and publish them.</summary>
    public bool EnableKvCacheEvents { get; init; }

    /// <summary>"zmq" or "null"; unset, "zmq" when events are on and "null" otherwise (as vLLM's __post_init__).</summary>
    public string? Publisher { get; init; }

    /// <summary>The ZMQ PUB endpoint: bound when it holds `*` or `::` (or is inproc://), otherwise connected.</summary>
    public string Endpoint { get; init; } = "tcp://*:5557";

    /// <summary>The ZMQ ROUTER endpoint (bound) that replays buffered batches from a sequence number; none when null.</summary>
    public string? ReplayEndpoint { get; init; }

    /// <summary>Batches kept for replay (the last N steps that had events).</summary>
    public int BufferSteps { get; init; } = 10_000;

    /// <summary>The PUB socket's send high-water mark: messages a slow subscriber may queue before ZMQ drops them (0: no limit).</summary>
    public int Hwm { get; init; } = 100_000;

    /// <summary>Batches waiting for the publisher thread; more are dropped with a warning (0: no limit).</summary>
    public int MaxQueueSize { get; init; } = 100_000;

    /// <summary>The first frame of every message; subscribers filter on its prefix.</summary>
    public string Topic { get; init; } = "";

    /// <summary>The publisher in force: <see cref="Publisher"/>, or vLLM's default for it.</summary>
    public string ResolvedPublisher => Publisher ?? (EnableKvCacheEvents ? "zmq" : "null");

    /// <summary>Whether a ZMQ publisher runs (events on and the publisher zmq).</summary>
    public bool PublishesOverZmq => EnableKvCacheEvents && ResolvedPublisher == "zmq";

    /// <summary>Reads vLLM's JSON form; an unknown key, a wrong type or a bad value is an <see cref="ArgumentException"/> of one line.</summary>
    public static KvEventsConfig Parse(string json)
    {
        var config = JsonFlag.Read(Flag, json, "{\"enable_kv_cache_events\": true}", new KvEventsConfig(), With);
        config.Validate();
        return config;
    }

    private const string Flag = "--kv-events-config";

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (Publisher is not (null or "zmq" or "null"))
            throw new ArgumentException($"--kv-events-config: publisher '{Publisher}' is not supported (supported: zmq, null).");
        if (BufferSteps < 0 || Hwm < 0 || MaxQueueSize < 0)
            throw new ArgumentException("--kv-events-config: buffer_steps, hwm and max_queue_size must not be negative.");
        if (!PublishesOverZmq)
            return;
        CheckEndpoint("endpoint", Endpoint);
        if (ReplayEndpoint != null)
            CheckEndpoint("replay_endpoint", ReplayEndpoint);
    }

    private static void CheckEndpoint(string field, string endpoint)
    {
        // NetMQ's ipc:// is TCP on loopback underneath, which no libzmq subscriber could reach.
        if (!(endpoint.StartsWith("tcp://", StringComparison.Ordinal) || endpoint.StartsWith("inproc://", StringComparison.Ordinal)))
            throw new ArgumentException($"--kv-events-config: {field} '{endpoint}' must be a tcp:// (or inproc://) address.");
    }

    private static KvEventsConfig With(KvEventsConfig c, string key, JsonElement v) => key switch
    {
        "enable_kv_cache_events" => c with { EnableKvCacheEvents = Bool(key, v) },
        "publisher" => c with { Publisher = String(key, v, nullable: true) },
        "endpoint" => c with { Endpoint = String(key, v, nullable: false)! },
        "replay_endpoint" => c with { ReplayEndpoint = String(key, v, nullable: true) },
        "buffer_steps" => c with { BufferSteps = Int(key, v) },
        "hwm" => c with { Hwm = Int(key, v) },
        "max_queue_size" => c with { MaxQueueSize = Int(key, v) },
        "topic" => c with { Topic = String(key, v, nullable: false)! },
        _ => throw new ArgumentException($"--kv-events-config: unknown field '{key}' (known: {string.Join(", ", Fields)})."),
    };

    private static bool Bool(string key, JsonElement v) => JsonFlag.Bool(Flag, key, v);

    private static string? String(string key, JsonElement v, bool nullable) => JsonFlag.String(Flag, key, v, nullable);

    private static int Int(string key, JsonElement v) => JsonFlag.Int(Flag, key, v);
}
