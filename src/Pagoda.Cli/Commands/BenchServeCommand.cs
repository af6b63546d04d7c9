using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.Cli.Commands;

/// <summary>
/// `pagoda bench serve` (vLLM's `bench serve`): drives a running server with streaming completions, random or
/// file prompts, Poisson (or unlimited) arrivals and an optional concurrency cap, and reports throughput,
/// TTFT, TPOT and ITL. With a prefill server it drives a disaggregated pair as llm-d's routing sidecar does.
/// </summary>
internal static class BenchServeCommand
{
    private sealed record Result(bool Ok, double Ttft, double Latency, int OutputTokens, int PromptTokens, List<double> Itl, string? Error);

    public static Command Create(IReadOnlyDictionary<string, string?>? environment)
    {
        var baseUrl = new Option<string>("--base-url") { Description = "Server to drive.", DefaultValueFactory = _ => "http://127.0.0.1:8000" };
        var endpoint = new Option<string>("--endpoint") { Description = "Completions route.", DefaultValueFactory = _ => "/v1/completions" };
        var model = new Option<string?>("--model") { Description = "Model name to send (default: none, the server's)." };
        var apiKey = new Option<string?>("--api-key") { Description = "Bearer key (default: PAGODA_API_KEY)." };
        var dataset = new Option<string>("--dataset-name") { Description = "random (token ids of --input-len) or file.", DefaultValueFactory = _ => "random" };
        var datasetPath = new Option<string?>("--dataset-path") { Description = "For file: one prompt per line." };
        var numPrompts = new Option<int>("--num-prompts") { Description = "Requests to send.", DefaultValueFactory = _ => 100 };
        var rate = new Option<string>("--request-rate") { Description = "Requests per second (Poisson arrivals), or inf to send all at once.", DefaultValueFactory = _ => "inf" };
        var maxConcurrency = new Option<int?>("--max-concurrency") { Description = "Most requests in flight at once." };
        var inputLen = new Option<int>("--input-len", "--random-input-len") { Description = "Prompt tokens (random dataset).", DefaultValueFactory = _ => 32 };
        var outputLen = new Option<int>("--output-len", "--random-output-len") { Description = "max_tokens of each request.", DefaultValueFactory = _ => 32 };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "Generate exactly --output-len tokens." };
        var seed = new Option<int>("--seed") { Description = "Seed of the prompts and arrival times.", DefaultValueFactory = _ => 0 };
        var outputJson = new Option<string?>("--output-json") { Description = "Write the results here as JSON." };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature to send (default: 0, greedy, as vLLM's bench)." };
        var topP = new Option<double?>("--top-p") { Description = "top_p to send." };
        var topK = new Option<int?>("--top-k") { Description = "top_k to send." };
        var minP = new Option<double?>("--min-p") { Description = "min_p to send." };
        var logprobs = new Option<int?>("--logprobs") { Description = "Ask for this many logprobs of each generated token (as vLLM's bench)." };
        var serverDefaults = new Option<bool>("--server-sampling-defaults") { Description = "Send no sampling fields: the server's defaults (the model's generation_config) apply, as for most real clients." };
        var prefillUrl = new Option<string?>("--prefill-base-url")
        {
            Description = "Disaggregated prefill, as llm-d's routing sidecar drives it: each request first goes to this server (a kv_producer) with " +
                          "max_tokens 1 and kv_transfer_params.do_remote_decode, then to --base-url (a kv_consumer) with the kv_transfer_params it returned; TTFT counts both.",
        };

        var cmd = new Command("serve", "Benchmark a running OpenAI-compatible server with streaming requests.");
        foreach (var o in new Option[] { baseUrl, endpoint, model, apiKey, dataset, datasetPath, numPrompts, rate, maxConcurrency, inputLen, outputLen, ignoreEos, seed, outputJson,
                     temperature, topP, topK, minP, logprobs, serverDefaults, prefillUrl })
            cmd.Add(o);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            var output = r.InvocationConfiguration.Output;
            int n = r.GetValue(numPrompts), inLen = r.GetValue(inputLen), outLen = r.GetValue(outputLen);
            if (n < 1 || inLen < 1 || outLen < 1)
                throw new ArgumentException("--num-prompts, --input-len and --output-len must be positive.");
            double perSecond = r.GetValue(rate) is "inf" ? double.PositiveInfinity
                : double.TryParse(r.GetValue(rate), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 ? v
                : throw new ArgumentException($"--request-rate must be a positive number or inf, got '{r.GetValue(rate)}'.");
            var rng = new Random(r.GetValue(seed));
            var prompts = Prompts(r.GetValue(dataset)!, r.GetValue(datasetPath), n, inLen, rng);
            string? key = r.GetValue(apiKey) ?? (environment != null ? environment.GetValueOrDefault("PAGODA_API_KEY") : Environment.GetEnvironmentVariable("PAGODA_API_KEY"));
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096 })
            {
                BaseAddress = new Uri(r.GetValue(baseUrl)!), Timeout = TimeSpan.FromMinutes(30),
            };
            using var prefill = r.GetValue(prefillUrl) is { } pu
                ? new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096 }) { BaseAddress = new Uri(pu), Timeout = TimeSpan.FromMinutes(30) }
                : null;
            foreach (var client in new[] { http, prefill })
            {
                if (key != null && client != null)
                    client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }

            output.WriteLine($"Sending {n} requests to {http.BaseAddress}{r.GetValue(endpoint)!.TrimStart('/')} at {(double.IsInfinity(perSecond) ? "inf" : perSecond)} req/s" +
                             (r.GetValue(maxConcurrency) is int mc ? $", at most {mc} at once" : "") +
                             (prefill != null ? $", prefilled on {prefill.BaseAddress}" : ""));
            using var gate = r.GetValue(maxConcurrency) is int c and > 0 ? new SemaphoreSlim(c) : null;
            var sampling = new SamplingFields(r.GetValue(temperature), r.GetValue(topP), r.GetValue(topK), r.GetValue(minP), r.GetValue(serverDefaults)) { Logprobs = r.GetValue(logprobs) };
            var specBefore = BenchSpecDecoding.Scrape(http);
            var clock = Stopwatch.StartNew();
            var tasks = new List<Task<Result>>();
            for (int i = 0; i < n; i++)
            {
                var body = RequestBody(prompts[i], outLen, r.GetValue(ignoreEos), sampling);
                if (r.GetValue(model) is { } m)
                    body["model"] = m;
                tasks.Add(Send(http, prefill, r.GetValue(endpoint)!, body, $"bench-{i}", gate));
                if (!double.IsInfinity(perSecond) && i < n - 1)
                    Thread.Sleep(TimeSpan.FromSeconds(-Math.Log(1 - rng.NextDouble()) / perSecond));
            }
            var results = Task.WhenAll(tasks).GetAwaiter().GetResult();
            double duration = clock.Elapsed.TotalSeconds;
            var report = Report(results, duration, r.GetValue(maxConcurrency), perSecond);
            Print(output, report);
            BenchSpecDecoding.Report(output, report, specBefore, specBefore == null ? null : BenchSpecDecoding.Scrape(http));
            foreach (string e in results.Where(x => !x.Ok).Select(x => x.Error!).Distinct().Take(5))
                output.WriteLine($"error: {e}");
            if (r.GetValue(outputJson) is { } path)
                File.WriteAllText(path, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return results.All(x => x.Ok) ? 0 : 1;
        }));
        return cmd;
    }

    /// <summary>The sampling fields a benchmark sends; with <see cref="ServerDefaults"/> none (they conflict with the others).</summary>
    internal sealed record SamplingFields(double? Temperature, double? TopP, int? TopK, double? MinP, bool ServerDefaults)
    {
        /// <summary>Logprobs per generated token to ask for (not a sampling field: sent with server defaults too).</summary>
        public int? Logprobs { get; init; }
    }

    /// <summary>One streamed completions request: greedy unless told otherwise; with server defaults no sampling fields at all.</summary>
    internal static JsonObject RequestBody(JsonNode prompt, int maxTokens, bool ignoreEos, SamplingFields s)
    {
        var body = new JsonObject
        {
            ["prompt"] = prompt.DeepClone(), ["max_tokens"] = maxTokens, ["ignore_eos"] = ignoreEos, ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        if (s.Logprobs is { } lp)
            body["logprobs"] = lp;
        if (s.ServerDefaults)
        {
            if (s.Temperature != null || s.TopP != null || s.TopK != null || s.MinP != null)
                throw new ArgumentException("--server-sampling-defaults sends no sampling fields: drop --temperature, --top-p, --top-k and --min-p.");
            return body;
        }
        body["temperature"] = s.Temperature ?? 0;
        if (s.TopP is { } p)
            body["top_p"] = p;
        if (s.TopK is { } k)
            body["top_k"] = k;
        if (s.MinP is { } m)
            body["min_p"] = m;
        return body;
    }

    private static List<JsonNode> Prompts(string dataset, string? path, int n, int inputLen, Random rng)
    {
        switch (dataset)
        {
            case "random":
                // Token ids from the common range of small vocabularies, so any served model accepts them.
                return Enumerable.Range(0, n).Select(_ => (JsonNode)new JsonArray(Enumerable.Range(0, inputLen).Select(_ => (JsonNode)rng.Next(100, 5_000)).ToArray())).ToList();
            case "file":
                var lines = File.ReadAllLines(path ?? throw new ArgumentException("--dataset-name file needs --dataset-path.")).Where(l => l.Trim().Length > 0).ToList();
                if (lines.Count == 0)
                    throw new ArgumentException($"{path} holds no prompts.");
                return Enumerable.Range(0, n).Select(i => (JsonNode)lines[i % lines.Count]).ToList();
            default:
                throw new ArgumentException($"--dataset-name must be random or file, got '{dataset}'.");
        }
    }

    /// <summary>The prefill half of a disaggregated request (what llm-d's sidecar sends the producer): one token, no stream.</summary>
    internal static JsonObject PrefillBody(JsonObject body)
    {
        var prefill = body.DeepClone().AsObject();
        prefill["stream"] = false;
        prefill.Remove("stream_options");
        prefill["max_tokens"] = 1;
        prefill["kv_transfer_params"] = new JsonObject
        {
            ["do_remote_decode"] = true, ["do_remote_prefill"] = false, ["remote_engine_id"] = null, ["remote_block_ids"] = null,
            ["remote_host"] = null, ["remote_port"] = null,
        };
        return prefill;
    }

    private static HttpRequestMessage Post(string endpoint, JsonObject body, string requestId)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Request-Id", requestId);
        return request;
    }

    private static async Task<Result> Send(HttpClient http, HttpClient? prefill, string endpoint, JsonObject body, string requestId, SemaphoreSlim? gate)
    {
        if (gate != null)
            await gate.WaitAsync();
        try
        {
            long start = Stopwatch.GetTimestamp(), last = 0;
            double ttft = 0;
            var itl = new List<double>();
            int outputTokens = 0, promptTokens = 0;
            if (prefill != null)
            {
                using var half = Post(endpoint, PrefillBody(body), requestId);
                using var first = await prefill.SendAsync(half);
                string text = await first.Content.ReadAsStringAsync();
                if (!first.IsSuccessStatusCode)
                    return new Result(false, 0, 0, 0, 0, itl, $"prefill: {(int)first.StatusCode} {text}");
                if (JsonNode.Parse(text)?["kv_transfer_params"] is not JsonObject kv)
                    return new Result(false, 0, 0, 0, 0, itl, "the prefill server returned no kv_transfer_params (is it a kv_producer?)");
                body = body.DeepClone().AsObject();
                body["kv_transfer_params"] = kv.DeepClone();
            }
            using var request = Post(endpoint, body, requestId);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode)
                return new Result(false, 0, 0, 0, 0, itl, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            bool done = false;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    continue;
                string data = line[6..];
                if (data == "[DONE]")
                {
                    done = true;
                    break;
                }
                var chunk = JsonNode.Parse(data)!;
                if (chunk["error"] is { } error)
                    return new Result(false, 0, 0, 0, 0, itl, error.ToJsonString());
                if (chunk["usage"] is JsonObject usage)
                {
                    outputTokens = usage["completion_tokens"]!.GetValue<int>();
                    promptTokens = usage["prompt_tokens"]!.GetValue<int>();
                }
                if (chunk["choices"] is JsonArray { Count: > 0 })
                {
                    long now = Stopwatch.GetTimestamp();
                    if (last == 0)
                        ttft = Stopwatch.GetElapsedTime(start, now).TotalSeconds;
                    else
                        itl.Add(Stopwatch.GetElapsedTime(last, now).TotalSeconds);
                    last = now;
                }
            }
            double latency = Stopwatch.GetElapsedTime(start).TotalSeconds;
            return done ? new Result(true, ttft, latency, outputTokens, promptTokens, itl, null) : new Result(false, 0, 0, 0, 0, itl, "stream ended without [DONE]");
        }
        catch (HttpRequestException e)
        {
            return new Result(false, 0, 0, 0, 0, [], e.Message);
        }
        finally
        {
            gate?.Release();
        }
    }

    private static JsonObject Report(Result[] results, double duration, int? maxConcurrency, double rate)
    {
        var ok = results.Where(r => r.Ok).ToList();
        int output = ok.Sum(r => r.OutputTokens), input = ok.Sum(r => r.PromptTokens);
        var tpot = ok.Where(r => r.OutputTokens > 1).Select(r => (r.Latency - r.Ttft) / (r.OutputTokens - 1)).ToList();
        var report = new JsonObject
        {
            ["date"] = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture),
            ["request_rate"] = double.IsInfinity(rate) ? "inf" : rate,
            ["max_concurrency"] = maxConcurrency,
            ["num_prompts"] = results.Length,
            ["completed"] = ok.Count,
            ["failed"] = results.Length - ok.Count,
            ["duration"] = duration,
            ["total_input_tokens"] = input,
            ["total_output_tokens"] = output,
            ["request_throughput"] = ok.Count / duration,
            ["output_throughput"] = output / duration,
            ["total_token_throughput"] = (input + output) / duration,
        };
        foreach (var (name, values) in new[] { ("ttft", ok.Select(r => r.Ttft).ToList()), ("tpot", tpot), ("itl", ok.SelectMany(r => r.Itl).ToList()), ("e2el", ok.Select(r => r.Latency).ToList()) })
        {
            values.Sort();
            report[$"mean_{name}_ms"] = values.Count > 0 ? values.Average() * 1000 : 0;
            report[$"median_{name}_ms"] = Percentile(values, 50) * 1000;
            report[$"p90_{name}_ms"] = Percentile(values, 90) * 1000;
            report[$"p99_{name}_ms"] = Percentile(values, 99) * 1000;
        }
        return report;
    }

    // Linear interpolation between closest ranks (numpy's default), on sorted values.
    private static double Percentile(List<double> sorted, double p)
    {
        if (sorted.Count == 0)
            return 0;
        double rank = p / 100 * (sorted.Count - 1);
        int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    private static void Print(TextWriter w, JsonObject r)
    {
        string F(string key) => r[key]!.GetValueKind() == JsonValueKind.Number ? r[key]!.GetValue<double>().ToString("F2", CultureInfo.InvariantCulture) : r[key]!.ToString();
        w.WriteLine("============ Serving Benchmark Result ============");
        w.WriteLine($"{"Successful requests:",-40}{r["completed"]}");
        w.WriteLine($"{"Failed requests:",-40}{r["failed"]}");
        w.WriteLine($"{"Benchmark duration (s):",-40}{F("duration")}");
        w.WriteLine($"{"Total input tokens:",-40}{r["total_input_tokens"]}");
        w.WriteLine($"{"Total generated tokens:",-40}{r["total_output_tokens"]}");
        w.WriteLine($"{"Request throughput (req/s):",-40}{F("request_throughput")}");
        w.WriteLine($"{"Output token throughput (tok/s):",-40}{F("output_throughput")}");
        w.WriteLine($"{"Total Token throughput (tok/s):",-40}{F("total_token_throughput")}");
        foreach (var (name, title) in new[] { ("ttft", "Time to First Token"), ("tpot", "Time per Output Token (excl. 1st token)"), ("itl", "Inter-token Latency") })
        {
            w.WriteLine(new string('-', 8) + title + new string('-', Math.Max(2, 42 - title.Length)));
            foreach (string stat in new[] { "mean", "median", "p90", "p99" })
                w.WriteLine($"{$"{char.ToUpperInvariant(stat[0])}{stat[1..]} {name.ToUpperInvariant()} (ms):",-40}{F($"{stat}_{name}_ms")}");
        }
        w.WriteLine("==================================================");
    }
}
