using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.Loading.Hub;

namespace Pagoda.Cli.Commands;

/// <summary>
/// `pagoda bench latency|throughput|serve`: vLLM's benchmarks; latency and throughput are offline over random token prompts. They need no
/// tokenizer (ids in, ids out), so config-only folders with `--load-format dummy` work as they are.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(HubSettings hub, bool terminal, IReadOnlyDictionary<string, string?>? environment)
    {
        var cmd = new Command("bench", "Benchmark Pagoda (vLLM's bench latency / throughput / serve).");
        cmd.Add(BenchLatencyCommand.Create(hub, terminal));
        cmd.Add(BenchThroughputCommand.Create(hub, terminal));
        cmd.Add(BenchServeCommand.Create(environment));
        return cmd;
    }

    /// <summary>Engine args for benchmarking: no tokenizer unless one is named (the prompts are ids).</summary>
    public static EngineArgs Bind(EngineOptions engine, ParseResult r, HubSettings hub, bool terminal)
    {
        var args = engine.Bind(r, hub, terminal ? new TerminalProgress(r.InvocationConfiguration.Error) : null);
        return args with { SkipTokenizerInit = args.Tokenizer == null || args.SkipTokenizerInit };
    }

    /// <summary>Random prompts of token ids drawn uniformly from the vocabulary (vLLM's dummy prompts).</summary>
    public static List<PromptInput> RandomPrompts(int count, int length, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(_ => PromptInput.FromTokenIds(Enumerable.Range(0, length).Select(_ => rng.Next(vocab)).ToArray()))
            .ToList();
    }

    /// <summary>vLLM's benchmark sampling: temperature 1, top-p 1, EOS ignored, fixed output length.</summary>
    public static SamplingParams BenchSampling(int outputLen, int seed) => new()
    {
        Temperature = 1.0,
        TopP = 1.0,
        MaxTokens = outputLen,
        IgnoreEos = true,
        Seed = seed,
        OutputKind = RequestOutputKind.FinalOnly,
    };

    /// <summary>
    /// Runs the queued requests to completion; returns the seconds until every request had its first
    /// token (prefill, including that first sample) and the total seconds.
    /// </summary>
    public static (double Prefill, double Total) RunToCompletion(LLMEngine engine, int numRequests)
    {
        long firstTokens = engine.Stats.NumFirstTokens;
        var sw = Stopwatch.StartNew();
        double prefill = -1;
        while (engine.HasUnfinishedRequests)
        {
            engine.Step();
            // Done prefilling when every request has its first token (counting generated tokens instead ended it early
            // whenever the batch took more than one step's budget: the first requests' decodes counted too).
            if (prefill < 0 && engine.Stats.NumFirstTokens - firstTokens >= numRequests)
                prefill = sw.Elapsed.TotalSeconds;
        }
        return (prefill, sw.Elapsed.TotalSeconds);
    }

    /// <summary>Peak resident set size of this process (VmHWM), or -1 where /proc is missing.</summary>
    public static long PeakRssBytes()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line == null ? -1 : VmHwmBytes(line);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>Bytes of a /proc status "VmHWM:\t  1234 kB" line: a tab, then padding that a wide number (a 61 GB process) leaves out.</summary>
    public static long VmHwmBytes(string line) =>
        long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;

    public static string F(double v, int digits = 2) => v.ToString("F" + digits, CultureInfo.InvariantCulture);

    public static double Percentile(double[] sorted, double p)
    {
        double rank = p / 100 * (sorted.Length - 1);
        int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    public static double Median(IEnumerable<double> values) => Percentile(values.Order().ToArray(), 50);

    /// <summary>The facts every result file carries: model, dtype, quantization, threads, weight bytes.</summary>
    public static JsonObject Header(LLMEngine engine) => new()
    {
        ["model"] = engine.Folder.Path,
        ["load_format"] = engine.Args.LoadFormat,
        ["dtype"] = engine.Args.DType,
        ["quantization"] = engine.Args.Quantization,
        ["num_threads"] = engine.NumThreads,
        ["weight_bytes"] = engine.WeightBytes,
    };

    public static void WriteJson(string? path, JsonObject result)
    {
        if (path != null)
            File.WriteAllText(path, result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
