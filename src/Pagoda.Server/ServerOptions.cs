namespace Pagoda.Server;

/// <summary>How `pagoda serve` listens and behaves (the engine's own options live in <see cref="EngineArgs"/>).</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind (vLLM's --host); 0.0.0.0 or :: listens on every interface.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see <see cref="PagodaServer.Address"/>).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>When set, every route but /health and /ping needs `Authorization: Bearer KEY`.</summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// What <see cref="ApiKey"/> guards: "inference" (default) leaves /health, /ping, /metrics, /version and the render
    /// routes open for routers and probes; "all" guards everything but /health and /ping.
    /// </summary>
    public string ApiKeyScope { get; init; } = "inference";

    /// <summary>Names clients may use in `model`; the first is reported in responses. Empty: the model as given (fortune-chat for the embedded one).</summary>
    public IReadOnlyList<string> ServedModelNames { get; init; } = [];

    /// <summary>CORS origins allowed to call the API (`*` for any); empty: no CORS headers.</summary>
    public IReadOnlyList<string> AllowedOrigins { get; init; } = [];

    /// <summary>Log prompts, sampling parameters and outputs (off: only ids and counts are logged).</summary>
    public bool EnableLogRequests { get; init; }

    /// <summary>Prefix of the Prometheus metric names: `pagoda` (default) or `vllm` for vLLM dashboards.</summary>
    public string MetricsPrefix { get; init; } = "pagoda";

    /// <summary>How /v1/embeddings pools the final hidden states.</summary>
    public PoolingType PoolingType { get; init; } = PoolingType.Last;

    /// <summary>How often the throughput / load line is logged while requests are in flight.</summary>
    public TimeSpan StatsInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest request body accepted; a larger one is answered 413 before it is read.</summary>
    public long MaxRequestBodySize { get; init; } = 8 << 20;

    /// <summary>
    /// Requests allowed to wait for a slot in the engine; beyond it generation requests get 503 with
    /// Retry-After instead of joining an unbounded queue. Null: no limit (vLLM's behaviour).
    /// </summary>
    public int? MaxWaitingRequests { get; init; }

    /// <summary>How long shutdown waits for in-flight requests before closing their connections.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Tool calling: --enable-auto-tool-choice and --tool-call-parser.</summary>
    public OpenAi.ChatServingOptions Chat { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        Chat.Validate();
        if (Port is < 0 or > 65535)
            throw new ArgumentException($"--port must be between 0 and 65535, got {Port}.");
        if (MetricsPrefix is not ("pagoda" or "vllm"))
            throw new ArgumentException($"--metrics-prefix must be 'pagoda' or 'vllm', got '{MetricsPrefix}'.");
        if (MaxRequestBodySize < 1024)
            throw new ArgumentException($"--max-request-body-size must be at least 1024 bytes, got {MaxRequestBodySize}.");
        if (MaxWaitingRequests is < 0)
            throw new ArgumentException($"--max-waiting-requests must not be negative, got {MaxWaitingRequests}.");
        if (ShutdownTimeout < TimeSpan.Zero)
            throw new ArgumentException("--shutdown-timeout must not be negative.");
        if (ApiKeyScope is not ("inference" or "all"))
            throw new ArgumentException($"--api-key-scope must be 'inference' or 'all', got '{ApiKeyScope}'.");
        if (ApiKey is "")
            throw new ArgumentException("--api-key must not be empty.");
        if (ServedModelNames.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("--served-model-name must not be empty.");
    }
}
