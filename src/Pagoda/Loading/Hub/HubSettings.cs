namespace Pagoda.Loading.Hub;

/// <summary>
/// Where and how models are fetched: the Hugging Face Hub (or ModelScope) endpoint, cache folder, token
/// and offline switch. <see cref="FromEnvironment"/> is the one place that reads the environment
/// variables huggingface_hub, modelscope and vLLM use; everything else receives this record.
/// </summary>
public sealed record HubSettings
{
    /// <summary>Hub base URL (HF_ENDPOINT).</summary>
    public string Endpoint { get; init; } = "https://huggingface.co";

    /// <summary>The huggingface_hub cache: models--org--name folders (HF_HUB_CACHE, else HF_HOME/hub).</summary>
    public string CacheDir { get; init; } = Path.Combine(DefaultHome(), ".cache", "huggingface", "hub");

    /// <summary>Access token for gated or private repos (HF_TOKEN, else the token file in HF_HOME).</summary>
    public string? Token { get; init; }

    /// <summary>Use only the cache, never the network (HF_HUB_OFFLINE).</summary>
    public bool Offline { get; init; }

    /// <summary>Fetch from ModelScope instead (PAGODA_USE_MODELSCOPE or VLLM_USE_MODELSCOPE = true).</summary>
    public bool UseModelScope { get; init; }

    /// <summary>ModelScope base URL (MODELSCOPE_DOMAIN: a host name, or a URL with its scheme).</summary>
    public string ModelScopeEndpoint { get; init; } = "https://www.modelscope.cn";

    /// <summary>ModelScope's cache root (MODELSCOPE_CACHE); models live under its models/ folder.</summary>
    public string ModelScopeCacheDir { get; init; } = Path.Combine(DefaultHome(), ".cache", "modelscope", "hub");

    /// <summary>ModelScope access token (MODELSCOPE_API_TOKEN).</summary>
    public string? ModelScopeToken { get; init; }

    /// <summary>How long to wait for metadata answers (HF_HUB_ETAG_TIMEOUT, seconds).</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a download may stall before it is retried (HF_HUB_DOWNLOAD_TIMEOUT, seconds).</summary>
    public TimeSpan DownloadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts per request before a network failure or 5xx/429 answer becomes an error.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>First wait between attempts; it doubles each time, up to 8 s (huggingface_hub's backoff).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Files downloaded at once (huggingface_hub's default max_workers).</summary>
    public int MaxParallelDownloads { get; init; } = 8;

    /// <summary>
    /// Settings from <paramref name="environment"/> (default: this process's environment), with
    /// huggingface_hub's precedence: HF_HUB_CACHE over HF_HOME/hub over $XDG_CACHE_HOME/huggingface/hub.
    /// </summary>
    public static HubSettings FromEnvironment(IReadOnlyDictionary<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
        string? Get(string name) => environment.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v) ? v : null;
        static bool Truthy(string? v) => v?.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

        string home = Get("HOME") ?? DefaultHome();
        string Expand(string p) => p == "~" || p.StartsWith("~/", StringComparison.Ordinal) ? home + p[1..] : p;
        string xdgCache = Get("XDG_CACHE_HOME") is { } xdg ? Expand(xdg) : Path.Combine(home, ".cache");
        string hfHome = Get("HF_HOME") is { } h ? Expand(h) : Path.Combine(xdgCache, "huggingface");
        string cache = (Get("HF_HUB_CACHE") ?? Get("HUGGINGFACE_HUB_CACHE")) is { } c ? Expand(c) : Path.Combine(hfHome, "hub");

        string? token = Get("HF_TOKEN") ?? Get("HUGGING_FACE_HUB_TOKEN");
        if (token == null)
        {
            string tokenFile = Get("HF_TOKEN_PATH") is { } tp ? Expand(tp) : Path.Combine(hfHome, "token");
            token = File.Exists(tokenFile) ? File.ReadAllText(tokenFile).Trim() is { Length: > 0 } t ? t : null : null;
        }

        string? msDomain = Get("MODELSCOPE_DOMAIN");
        var defaults = new HubSettings();
        return defaults with
        {
            Endpoint = (Get("HF_ENDPOINT") ?? defaults.Endpoint).TrimEnd('/'),
            CacheDir = cache,
            Token = token,
            Offline = Truthy(Get("HF_HUB_OFFLINE")),
            UseModelScope = Get("PAGODA_USE_MODELSCOPE") is { } p
                ? p.Trim().Equals("true", StringComparison.OrdinalIgnoreCase)
                : Get("VLLM_USE_MODELSCOPE")?.Trim().Equals("true", StringComparison.OrdinalIgnoreCase) == true,
            ModelScopeEndpoint = msDomain == null ? defaults.ModelScopeEndpoint
                : (msDomain.Contains("://", StringComparison.Ordinal) ? msDomain : "https://" + msDomain).TrimEnd('/'),
            ModelScopeCacheDir = Get("MODELSCOPE_CACHE") is { } ms ? Expand(ms) : Path.Combine(home, ".cache", "modelscope", "hub"),
            ModelScopeToken = Get("MODELSCOPE_API_TOKEN"),
            MetadataTimeout = Seconds(Get("HF_HUB_ETAG_TIMEOUT"), defaults.MetadataTimeout),
            DownloadTimeout = Seconds(Get("HF_HUB_DOWNLOAD_TIMEOUT"), defaults.DownloadTimeout),
        };
    }

    private static TimeSpan Seconds(string? v, TimeSpan fallback) =>
        double.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? TimeSpan.FromSeconds(s) : fallback;

    private static string DefaultHome() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
}
