using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LLama.Native;
using LlamaCompare;
using Pagoda;
using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Loading;
using Pagoda.Models;

// Pagoda beside llama.cpp (LLamaSharp 0.30.0) on the same dummy weights, prompt, lengths and threads, in
// one process, runs interleaved so both see the same machine load. See docs/BENCHMARKS.md.
// Usage: dotnet run -c Release --project bench/LlamaCompare -- [--model DIR] [--input-len 128] [--output-len 128]
//        [--pp 512] [--runs 5] [--threads N] [--gguf-dir DIR] [--output-json FILE] [--batch-invariant] [--int8-only]
//        [--interleave token|run]
var opts = Args.Parse(args);
string model = Path.GetFullPath(opts.Get("--model", "tests/fixtures/configs/qwen2.5-0.5b-instruct"));
int inputLen = opts.Int("--input-len", 128), outputLen = opts.Int("--output-len", 128), pp = opts.Int("--pp", 512);
int runs = opts.Int("--runs", 5), threads = opts.Int("--threads", Environment.ProcessorCount);
string ggufDir = opts.Get("--gguf-dir", Path.Combine(Path.GetTempPath(), "pagoda-gguf"));
// Pagoda in batch-invariant mode (EngineArgs.BatchInvariant): decode in the prefill GEMM's reduction order.
bool batchInvariant = opts.Flag("--batch-invariant");
// Only the int8 / Q8_0 pair (half the time; the bf16 / F16 lines then read n/a).
bool int8Only = opts.Flag("--int8-only");
// How the two sides of a pair take turns: token by token (the default: both see the same load within
// milliseconds, but each side's threads may still be spinning from its last step while the other runs on
// the same cores), or run by run (no overlap; load can differ between the two halves of a run).
bool byRun = opts.Get("--interleave", "token") switch
{
    "token" => false,
    "run" => true,
    var other => throw new ArgumentException($"--interleave token|run, not {other}"),
};
Environment.SetEnvironmentVariable("PAGODA_CPU_THREADS", threads.ToString(CultureInfo.InvariantCulture));
NativeLibraryConfig.All.WithLogCallback((level, message) =>
{
    if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning)
        Console.Error.Write(message);
});

var folder = ModelFolder.Open(model);
var config = folder.Config;
Directory.CreateDirectory(ggufDir);
string name = Path.GetFileName(model.TrimEnd('/'));
string f16 = Path.Combine(ggufDir, $"{name}-F16.gguf"), q8 = Path.Combine(ggufDir, $"{name}-Q8_0.gguf");
if (!File.Exists(f16) || !File.Exists(q8))
{
    Console.Error.WriteLine($"writing {f16} and {q8} from Pagoda's dummy weights");
    using var store = WeightStore.CreateDummy(model, DType.BF16);
    using var backend = new CpuBackend();
    using var bound = ModelRegistry.Create(config, store, backend);   // makes every tensor, in the engine's order
    GgufWriter.Write(f16, config, store.Files[0], GgufWriter.Format.F16);
    GgufWriter.Write(q8, config, store.Files[0], GgufWriter.Format.Q8_0);
}

int maxLen = Math.Max(inputLen + outputLen, pp + 1) + 16;
var sides = new (string Name, Func<ISide> Open)[]
{
    ("pagoda bf16", () => new PagodaRunner(model, null, maxLen, batchInvariant)),
    ("llama.cpp F16", () => new LlamaRunner(f16, threads, maxLen, config.VocabSize)),
    ("pagoda int8", () => new PagodaRunner(model, "int8", maxLen, batchInvariant)),
    ("llama.cpp Q8_0", () => new LlamaRunner(q8, threads, maxLen, config.VocabSize)),
};
int firstPair = int8Only ? 2 : 0;
var runners = sides.Select((s, i) => i < firstPair ? null : s.Open()).ToArray();
var results = sides.Select(_ => new List<(double Prefill, double Decode, double Pp)>()).ToArray();
var bandwidth = new List<double> { Bandwidth.MeasureGBps(threads) };
// Pairs (Pagoda, llama.cpp) alternate step by step - prompt, prompt, token, token, ... - so both see the
// same machine load within milliseconds (or run by run with --interleave run); a run's decode rate is
// 1 / its median token time, which a step descheduled by another process does not move.
for (int r = -1; r < runs; r++)
{
    var rng = new Random(r + 7);
    int[] prompt = Enumerable.Range(0, inputLen).Select(_ => rng.Next(config.VocabSize)).ToArray();
    int[] ppPrompt = Enumerable.Range(0, pp).Select(_ => rng.Next(config.VocabSize)).ToArray();
    for (int pair = firstPair; pair < sides.Length; pair += 2)
    {
        var prefill = new double[2];
        var tokens = new[] { new List<double>(), new List<double>() };
        var ppTime = new double[2];
        if (byRun)
        {
            // One side's whole run (prompt, decode, pp), then the other's; which goes first alternates.
            for (int o = 0; o < 2; o++)
            {
                int s = (o + r + 1) % 2;
                prefill[s] = runners[pair + s]!.Start(prompt, outputLen);
                for (int t = 1; t < outputLen; t++)
                    tokens[s].Add(runners[pair + s]!.Next());
                ppTime[s] = runners[pair + s]!.Start(ppPrompt, 1);
            }
        }
        else
        {
            for (int s = 0; s < 2; s++)
                prefill[s] = runners[pair + s]!.Start(prompt, outputLen);
            for (int t = 1; t < outputLen; t++)
            {
                for (int s = 0; s < 2; s++)
                    tokens[s].Add(runners[pair + s]!.Next());
            }
            for (int s = 0; s < 2; s++)
                ppTime[s] = runners[pair + s]!.Start(ppPrompt, 1);
        }
        if (r < 0)
            continue; // warm-up: JIT, page faults, llama.cpp's first-use allocations
        for (int s = 0; s < 2; s++)
        {
            double decode = 1 / Median(tokens[s]);
            results[pair + s].Add((inputLen / prefill[s], decode, pp / ppTime[s]));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"run {r + 1} {sides[pair + s].Name,-15} prefill {inputLen / prefill[s],7:F1} tok/s  decode {decode,6:F2} tok/s (mean {tokens[s].Count / tokens[s].Sum(),6:F2})  pp{pp} {pp / ppTime[s],7:F1} tok/s"));
        }
    }
    bandwidth.Add(Bandwidth.MeasureGBps(threads));
}

static double Median(IEnumerable<double> xs) { var s = xs.Order().ToArray(); return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2; }
var med = results.Select(l => (Prefill: Median(l.Select(x => x.Prefill)), Decode: Median(l.Select(x => x.Decode)), Pp: Median(l.Select(x => x.Pp)))).ToArray();
double bw = Median(bandwidth);
long embedBytes = (long)config.VocabSize * config.HiddenSize * 2;
long bf16Bytes = runners[0] is PagodaRunner bf16Runner ? bf16Runner.Engine.WeightBytes : 0;
// int8 keeps the bf16 embedding table for row lookups; per token it reads the int8 copies (LM head included).
long int8Bytes = ((PagodaRunner)runners[2]!).Engine.WeightBytes - embedBytes;
string I(FormattableString f) => f.ToString(CultureInfo.InvariantCulture);
Console.WriteLine();
Console.WriteLine(I($"{name}, batch 1, {threads} threads, Pagoda batch invariant: {batchInvariant}, {inputLen} prompt + {outputLen} generated, pp{pp}; medians of {runs} runs, turns by {(byRun ? "run" : "token")}"));
Console.WriteLine(I($"memory bandwidth (1 GiB streaming read, {threads} threads): {bw:F1} GB/s (median of {bandwidth.Count})"));
for (int s = 0; s < sides.Length; s++)
    Console.WriteLine(I($"{sides[s].Name,-15} prefill {med[s].Prefill,7:F1}  decode {med[s].Decode,6:F2}  pp{pp} {med[s].Pp,7:F1} tok/s"));
Console.WriteLine(I($"bf16 vs F16:   decode {med[0].Decode / med[1].Decode:F2}x, pp{pp} {med[0].Pp / med[1].Pp:F2}x, decode at {med[0].Decode * bf16Bytes / 1e9 / bw:P0} of bandwidth ({bf16Bytes / 1e6:F0} MB/token)"));
Console.WriteLine(I($"int8 vs Q8_0:  decode {med[2].Decode / med[3].Decode:F2}x, pp{pp} {med[2].Pp / med[3].Pp:F2}x, decode at {med[2].Decode * int8Bytes / 1e9 / bw:P0} of bandwidth ({int8Bytes / 1e6:F0} MB/token)"));

if (opts.Get("--output-json", "") is { Length: > 0 } jsonPath)
{
    var json = new JsonObject
    {
        ["model"] = name, ["threads"] = threads, ["batch_invariant"] = batchInvariant, ["input_len"] = inputLen, ["output_len"] = outputLen, ["pp"] = pp, ["runs"] = runs,
        ["bandwidth_gbps"] = bw, ["bf16_bytes_per_token"] = bf16Bytes, ["int8_bytes_per_token"] = int8Bytes,
    };
    for (int s = 0; s < sides.Length; s++)
        json[sides[s].Name] = new JsonObject { ["prefill_tokens_per_s"] = med[s].Prefill, ["decode_tokens_per_s"] = med[s].Decode, [$"pp{pp}_tokens_per_s"] = med[s].Pp };
    File.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}
foreach (var runner in runners)
    runner?.Dispose();

internal sealed class Args(Dictionary<string, string> values)
{
    // "--key value" pairs; a key followed by another key (or nothing) is a flag.
    public static Args Parse(string[] a)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i < a.Length; i++)
            values[a[i]] = i + 1 < a.Length && !a[i + 1].StartsWith("--", StringComparison.Ordinal) ? a[++i] : "true";
        return new(values);
    }

    public bool Flag(string key) => values.GetValueOrDefault(key) == "true";
    public string Get(string key, string fallback) => values.GetValueOrDefault(key, fallback);
    public int Int(string key, int fallback) => values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
