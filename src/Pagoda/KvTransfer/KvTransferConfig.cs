using System.Text.Json;

namespace Pagoda.KvTransfer;

/// <summary>
/// vLLM's KVTransferConfig (vllm/config/kv_transfer.py) for disaggregated prefill: the connector, this instance's
/// role and where its KV transfer listener is. The same JSON (`--kv-transfer-config`), the same field names and
/// defaults; the connector is Pagoda's own (PagodaConnector: KV blocks pulled over TCP), and its knobs are keys of
/// kv_connector_extra_config.
/// </summary>
public sealed record KvTransferConfig
{
    /// <summary>vLLM's JSON keys, in its order.</summary>
    public static readonly string[] Fields =
    [
        "kv_connector", "engine_id", "kv_buffer_device", "kv_buffer_size", "kv_role", "kv_rank", "kv_parallel_size", "kv_ip",
        "kv_port", "kv_connector_extra_config", "kv_connector_module_path", "enable_permute_local_kv", "kv_load_failure_policy",
    ];

    /// <summary>The keys of kv_connector_extra_config PagodaConnector reads.</summary>
    public static readonly string[] ExtraFields = ["abort_request_timeout", "transfer_timeout"];

    /// <summary>The connectors there are.</summary>
    public static readonly string[] Connectors = ["PagodaConnector"];

    /// <summary>vLLM's roles: a producer serves its prefills' KV, a consumer pulls it, both does either.</summary>
    public static readonly string[] Roles = ["kv_producer", "kv_consumer", "kv_both"];

    /// <summary>vLLM's kv_load_failure_policy values.</summary>
    public static readonly string[] FailurePolicies = ["fail", "recompute"];

    /// <summary>The connector (required): PagodaConnector.</summary>
    public string KvConnector { get; init; } = "PagodaConnector";

    /// <summary>This instance's id in transfers (a consumer names it, the producer checks it); unset, a new GUID.</summary>
    public string EngineId { get; init; } = Guid.NewGuid().ToString();

    /// <summary>kv_producer, kv_consumer or kv_both (required).</summary>
    public string KvRole { get; init; } = "kv_both";

    /// <summary>The address the producer's listener binds and tells consumers (remote_host).</summary>
    public string KvIp { get; init; } = "127.0.0.1";

    /// <summary>The producer's listener port (0: any free port; the one bound is what consumers are told).</summary>
    public int KvPort { get; init; } = 14579;

    /// <summary>
    /// What a decode request whose KV could not be pulled does: "fail" (vLLM's default: the request ends with an error)
    /// or "recompute" (its prompt is prefilled locally instead).
    /// </summary>
    public string KvLoadFailurePolicy { get; init; } = "fail";

    /// <summary>
    /// How long a producer holds a prefill's blocks for a consumer that does not come (vLLM's
    /// VLLM_NIXL_ABORT_REQUEST_TIMEOUT, 480 s): kv_connector_extra_config.abort_request_timeout, in seconds.
    /// </summary>
    public TimeSpan AbortRequestTimeout { get; init; } = TimeSpan.FromSeconds(480);

    /// <summary>
    /// How long a consumer waits on the producer's socket (to connect, then between reads) before the pull fails:
    /// kv_connector_extra_config.transfer_timeout, in seconds.
    /// </summary>
    public TimeSpan TransferTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether this instance serves its prefills' KV (kv_producer, kv_both).</summary>
    public bool IsKvProducer => KvRole is "kv_producer" or "kv_both";

    /// <summary>Whether this instance pulls KV for its decodes (kv_consumer, kv_both).</summary>
    public bool IsKvConsumer => KvRole is "kv_consumer" or "kv_both";

    /// <summary>Whether a failed pull falls back to computing the prompt locally.</summary>
    public bool RecomputesFailedLoads => KvLoadFailurePolicy == "recompute";

    /// <summary>Reads vLLM's JSON form; an unknown key, a wrong type or a bad value is an <see cref="ArgumentException"/> of one line.</summary>
    public static KvTransferConfig Parse(string json)
    {
        var config = JsonFlag.Read(Flag, json, "{\"kv_connector\": \"PagodaConnector\", \"kv_role\": \"kv_both\"}", new KvTransferConfig(), With, root =>
        {
            if (!root.TryGetProperty("kv_connector", out var connector) || connector.ValueKind == JsonValueKind.Null)
                throw new ArgumentException("--kv-transfer-config: kv_connector is required (supported: PagodaConnector).");
            if (!root.TryGetProperty("kv_role", out var role) || role.ValueKind == JsonValueKind.Null)
                throw new ArgumentException($"--kv-transfer-config: kv_role is required (supported: {string.Join(", ", Roles)}).");
        });
        config.Validate();
        return config;
    }

    private const string Flag = "--kv-transfer-config";

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (!Connectors.Contains(KvConnector))
            throw new ArgumentException($"--kv-transfer-config: kv_connector '{KvConnector}' is not supported (supported: {string.Join(", ", Connectors)})"
                + (KvConnector == "NixlConnector" ? "; Pagoda pulls KV over its own TCP protocol, so every instance of a deployment uses PagodaConnector." : "."));
        if (!Roles.Contains(KvRole))
            throw new ArgumentException($"--kv-transfer-config: kv_role '{KvRole}' is not supported (supported: {string.Join(", ", Roles)}).");
        if (!FailurePolicies.Contains(KvLoadFailurePolicy))
            throw new ArgumentException($"--kv-transfer-config: kv_load_failure_policy '{KvLoadFailurePolicy}' is not supported (supported: fail, recompute).");
        if (string.IsNullOrEmpty(EngineId))
            throw new ArgumentException("--kv-transfer-config: engine_id must not be empty.");
        if (string.IsNullOrEmpty(KvIp))
            throw new ArgumentException("--kv-transfer-config: kv_ip must not be empty.");
        if (KvPort is < 0 or > 65535)
            throw new ArgumentException($"--kv-transfer-config: kv_port must be between 0 and 65535, got {KvPort}.");
        if (AbortRequestTimeout <= TimeSpan.Zero || TransferTimeout <= TimeSpan.Zero)
            throw new ArgumentException("--kv-transfer-config: abort_request_timeout and transfer_timeout must be positive.");
    }

    private static KvTransferConfig With(KvTransferConfig c, string key, JsonElement v) => key switch
    {
        "kv_connector" => c with { KvConnector = String(key, v) },
        "engine_id" => v.ValueKind == JsonValueKind.Null ? c : c with { EngineId = String(key, v) },
        "kv_role" => c with { KvRole = String(key, v) },
        "kv_ip" => c with { KvIp = String(key, v) },
        "kv_port" => c with { KvPort = Int(key, v) },
        "kv_load_failure_policy" => c with { KvLoadFailurePolicy = String(key, v) },
        "kv_connector_extra_config" => Extra(c, v),
        // Read for vLLM compatibility; they size or place buffers other connectors keep. Transfers here stage through host memory.
        "kv_buffer_device" or "kv_buffer_size" or "kv_rank" or "kv_parallel_size" => c,
        "kv_connector_module_path" when v.ValueKind == JsonValueKind.Null => c,
        "kv_connector_module_path" => throw new ArgumentException("--kv-transfer-config: kv_connector_module_path is not supported (connectors are built in)."),
        "enable_permute_local_kv" when v.ValueKind is JsonValueKind.False or JsonValueKind.Null => c,
        "enable_permute_local_kv" => throw new ArgumentException("--kv-transfer-config: enable_permute_local_kv is not supported (both sides use one layout)."),
        _ => throw new ArgumentException($"--kv-transfer-config: unknown field '{key}' (known: {string.Join(", ", Fields)})."),
    };

    private static KvTransferConfig Extra(KvTransferConfig c, JsonElement extra)
    {
        if (extra.ValueKind == JsonValueKind.Null)
            return c;
        if (extra.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"--kv-transfer-config: kv_connector_extra_config must be an object, got {extra.GetRawText()}.");
        foreach (var p in extra.EnumerateObject())
        {
            c = p.Name switch
            {
                "abort_request_timeout" => c with { AbortRequestTimeout = Seconds(p.Name, p.Value) },
                "transfer_timeout" => c with { TransferTimeout = Seconds(p.Name, p.Value) },
                _ => throw new ArgumentException(
                    $"--kv-transfer-config: unknown kv_connector_extra_config field '{p.Name}' (known: {string.Join(", ", ExtraFields)})."),
            };
        }
        return c;
    }

    private static string String(string key, JsonElement v) => JsonFlag.String(Flag, key, v, nullable: false)!;

    private static int Int(string key, JsonElement v) => JsonFlag.Int(Flag, key, v);

    private static TimeSpan Seconds(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double s) && s > 0 && s <= TimeSpan.MaxValue.TotalSeconds / 2
            ? TimeSpan.FromSeconds(s)
            : throw new ArgumentException($"--kv-transfer-config: kv_connector_extra_config.{key} must be a positive number of seconds, got {v.GetRawText()}.");
}
