using System.Collections.Concurrent;
using System.Text;
using Pagoda.Engine;

namespace Pagoda.Server.Metrics;

/// <summary>
/// vLLM's Prometheus metrics under `pagoda:` (or `vllm:`): engine gauges and counters read from
/// <see cref="EngineStats"/> at scrape time, per-request latencies and outcomes recorded by the endpoints.
/// </summary>
internal sealed class ServerMetrics(string prefix, string modelName, string cacheConfigLabels = "")
{
    private static readonly double[] TtftBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] TpotBuckets =
        [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] E2eBuckets =
        [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    private readonly Histogram _ttft = new(TtftBuckets), _tpot = new(TpotBuckets), _e2e = new(E2eBuckets);
    private readonly ConcurrentDictionary<string, long> _success = new();
    private readonly string _labels = $"model_name=\"{PrometheusText.Escape(modelName)}\"";

    /// <summary>Requests being served right now (vLLM's /load).</summary>
    public int InFlight => _inFlight;
    private int _inFlight;

    /// <summary>Call when a generation request starts; dispose the result when it ends.</summary>
    public RequestTimer Start() => new(this);

    /// <summary>Times one request: time to first token, time per output token, end to end, and how it finished.</summary>
    public sealed class RequestTimer : IDisposable
    {
        private readonly ServerMetrics _m;
        private readonly long _start = System.Diagnostics.Stopwatch.GetTimestamp();
        private long _firstToken;
        private int _tokens;
        private string? _finishReason;
        private bool _disposed;

        internal RequestTimer(ServerMetrics m)
        {
            _m = m;
            Interlocked.Increment(ref m._inFlight);
        }

        /// <summary>Counts tokens produced; the first call marks the first token.</summary>
        public void Tokens(int count)
        {
            if (count > 0 && _firstToken == 0)
                _firstToken = System.Diagnostics.Stopwatch.GetTimestamp();
            _tokens += count;
        }

        /// <summary>The request finished (stop, length, ...); one that ends unfinished (the client went away, or it failed) counts as "abort", as in vLLM.</summary>
        public void Finished(string? reason) => _finishReason ??= reason;

        public void Dispose()
        {
            if (_disposed)
                return;
            _disposed = true;
            Interlocked.Decrement(ref _m._inFlight);
            if (_finishReason is null)
            {
                _m._success.AddOrUpdate("abort", 1, (_, n) => n + 1);
                return;
            }
            double e2e = System.Diagnostics.Stopwatch.GetElapsedTime(_start).TotalSeconds;
            _m._e2e.Observe(e2e);
            _m._success.AddOrUpdate(_finishReason, 1, (_, n) => n + 1);
            if (_firstToken != 0)
            {
                double ttft = System.Diagnostics.Stopwatch.GetElapsedTime(_start, _firstToken).TotalSeconds;
                _m._ttft.Observe(ttft);
                if (_tokens > 1)
                    _m._tpot.Observe((e2e - ttft) / (_tokens - 1));
            }
        }
    }

    /// <summary>
    /// The exposition text for a scrape. Engine gauges and counters come one sample per replica, labelled
    /// engine="rank" as vLLM labels them, when there are several (data parallelism); a single engine's have no label.
    /// </summary>
    public string Render(IReadOnlyList<EngineStats> replicas)
    {
        var sb = new StringBuilder();
        string Labels(int r) => replicas.Count > 1 ? $"engine=\"{r}\",{_labels}" : _labels;
        void Gauge(string name, string help, Func<EngineStats, double> v)
        {
            PrometheusText.Header(sb, $"{prefix}:{name}", "gauge", help);
            for (int r = 0; r < replicas.Count; r++)
                PrometheusText.Sample(sb, $"{prefix}:{name}", Labels(r), v(replicas[r]));
        }
        void Counter(string name, string help, Func<EngineStats, double> v)
        {
            PrometheusText.Header(sb, $"{prefix}:{name}_total", "counter", help);
            for (int r = 0; r < replicas.Count; r++)
                PrometheusText.Sample(sb, $"{prefix}:{name}_total", Labels(r), v(replicas[r]));
        }
        void Hist(string name, string help, Histogram h)
        {
            PrometheusText.Header(sb, $"{prefix}:{name}", "histogram", help);
            h.WriteTo(sb, $"{prefix}:{name}", _labels);
        }

        // vLLM's info gauge: the KV cache's configuration as labels (the endpoint picker reads block_size and num_gpu_blocks).
        PrometheusText.Header(sb, $"{prefix}:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
        PrometheusText.Sample(sb, $"{prefix}:cache_config_info", cacheConfigLabels, 1);
        Gauge("num_requests_running", "Number of requests in model execution batches.", s => s.NumRunning);
        Gauge("num_requests_waiting", "Number of requests waiting to be processed.", s => s.NumWaiting);
        Gauge("kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s => s.KvCacheUsage);
        Counter("prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", s => s.PrefixCache.QueriedTokens);
        Counter("prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", s => s.PrefixCache.HitTokens);
        Counter("num_preemptions", "Cumulative number of preemptions from the engine.", s => s.NumPreemptions);
        Counter("prompt_tokens", "Number of prefill tokens processed.", s => s.PromptTokens);
        Counter("generation_tokens", "Number of generation tokens processed.", s => s.GenerationTokens);
        if (replicas.Count > 0 && replicas[0].SpecDecoding is { } spec)
        {
            // vLLM's spec_decode counters: only an engine with --speculative-config has them.
            Counter("spec_decode_num_drafts", "Number of spec decoding drafts.", s => s.SpecDecoding?.NumDrafts ?? 0);
            Counter("spec_decode_num_draft_tokens", "Number of draft tokens.", s => s.SpecDecoding?.NumDraftTokens ?? 0);
            Counter("spec_decode_num_accepted_tokens", "Number of accepted tokens.", s => s.SpecDecoding?.NumAcceptedTokens ?? 0);
            string name = $"{prefix}:spec_decode_num_accepted_tokens_per_pos_total";
            PrometheusText.Header(sb, name, "counter", "Accepted tokens per draft position.");
            for (int r = 0; r < replicas.Count; r++)
            {
                for (int pos = 0; pos < spec.NumSpecTokens; pos++)
                    PrometheusText.Sample(sb, name, $"position=\"{pos}\",{Labels(r)}", replicas[r].SpecDecoding?.NumAcceptedTokensPerPos[pos] ?? 0);
            }
        }

        PrometheusText.Header(sb, $"{prefix}:request_success_total", "counter", "Count of successfully processed requests.");
        foreach (string reason in new[] { "stop", "length", "abort" }.Union(_success.Keys.Order()))
            PrometheusText.Sample(sb, $"{prefix}:request_success_total", $"finished_reason=\"{PrometheusText.Escape(reason)}\",{_labels}",
                _success.GetValueOrDefault(reason));

        Hist("time_to_first_token_seconds", "Histogram of time to first token in seconds.", _ttft);
        Hist("time_per_output_token_seconds", "Histogram of time per output token in seconds.", _tpot);
        Hist("e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", _e2e);
        return sb.ToString();
    }
}
