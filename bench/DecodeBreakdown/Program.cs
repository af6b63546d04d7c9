using System.Diagnostics;
using System.Globalization;
using DecodeBreakdown;
using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Loading;
using Pagoda.Models;

// Where one batch-1 decode token's time goes on the CPU backend: every backend op timed (wall clock) over
// a run of decode steps on dummy weights, beside the bytes each GEMV reads and a memory-bandwidth probe.
// Usage: dotnet run -c Release --project bench/DecodeBreakdown -- [--model DIR] [--quant int8] [--prompt 128]
//        [--tokens 128] [--rounds 3] [--batch-invariant] [--attention CONTEXT (one layer's attention alone)]
//        [--prefill (time the prompt forwards instead: one "step" is a whole prompt)]
//        [--batch N (N sequences decoding together, each after its own prompt)]
//        [--query Q (each decode step feeds Q tokens per sequence with every row's logits: verifying Q - 1 drafts)]
string model = "tests/fixtures/configs/qwen2.5-0.5b-instruct";
string? quant = null;
int promptLen = 128, tokens = 128, rounds = 3;
bool batchInvariant = false;
int attentionContext = 0, batchSize = 1, query = 1;
bool prefill = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--model": model = args[++i]; break;
        case "--quant": quant = args[++i]; break;
        case "--prompt": promptLen = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--tokens": tokens = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--batch-invariant": batchInvariant = true; break;
        case "--prefill": prefill = true; break;
        case "--batch": batchSize = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--query": query = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--attention": attentionContext = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }
}

var folder = ModelFolder.Open(Path.GetFullPath(model));
if (attentionContext > 0)
{
    using var cpu = new CpuBackend();
    var cfg = folder.Config;
    AttentionProbe.Run(cpu, cfg.NumHeads, cfg.NumKvHeads, cfg.HeadDim, attentionContext, 200);
    return;
}
using var store = WeightStore.CreateDummy(folder.Path, DType.BF16);
var cpuBackend = new CpuBackend(new BackendOptions { BatchInvariant = batchInvariant });
using var timing = new TimingBackend(cpuBackend);
using var net = ModelRegistry.Create(folder.Config, store, timing, quant);
const int blockSize = 16;
int blocksPerSeq = (promptLen + tokens * query + blockSize - 1) / blockSize + 1, blocks = blocksPerSeq * batchSize;
using var cache = timing.AllocateKvCache(folder.Config.NumLayers, blocks, blockSize, net.KvWidth);
int[][] tables = Enumerable.Range(0, batchSize).Select(s => Enumerable.Range(s * blocksPerSeq, blocksPerSeq).ToArray()).ToArray();
var rng = new Random(7);

double probe = 0;
var tokenMs = new List<double>();
for (int round = 0; round < rounds + 1; round++)
{
    // Round 0 warms up (JIT, page faults, huge pages) and is not recorded.
    timing.Recording = round > 0;
    int[] prompt = Enumerable.Range(0, promptLen * batchSize).Select(_ => rng.Next(folder.Config.VocabSize)).ToArray();
    bool record = timing.Recording;
    timing.Recording = record && prefill;
    long promptStart = Stopwatch.GetTimestamp();
    var logits = net.Forward(Batch(prompt, 0), cache);
    if (record && prefill)
        tokenMs.Add(Stopwatch.GetElapsedTime(promptStart).TotalMilliseconds);
    timing.Recording = record && !prefill;
    int[] next = Argmax(logits, batchSize);
    for (int t = 0; t < tokens; t++)
    {
        long start = Stopwatch.GetTimestamp();
        logits = net.Forward(Batch(next.SelectMany(id => Enumerable.Repeat(id, query)).ToArray(), promptLen + t * query, allRows: query > 1), cache);
        if (record && !prefill)
            tokenMs.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        next = Argmax(logits, batchSize * query).Where((_, i) => i % query == query - 1).ToArray();
    }
    probe = Math.Max(probe, LlamaCompare.Bandwidth.MeasureGBps(Environment.ProcessorCount));
}

int steps = tokenMs.Count;
double meanToken = tokenMs.Average();
tokenMs.Sort();
double medianToken = tokenMs[steps / 2];
int stepsPerKey = steps;
long weightBytes = timing.Totals.Where(kv => kv.Key.StartsWith("Linear", StringComparison.Ordinal)).Sum(kv => kv.Value.Bytes) / steps;
Console.WriteLine($"{folder.Config.Architecture} {(quant ?? "bf16")}{(batchInvariant ? " batch-invariant" : "")}: {steps} {(prefill ? "prompt forwards" : "decode steps")} of {batchSize} sequence(s){(query > 1 ? $" of {query} tokens, every row's logits," : "")} after a {promptLen}-token prompt each, {Environment.ProcessorCount} threads");
Console.WriteLine($"token: mean {meanToken:F2} ms, median {medianToken:F2} ms ({1000 / medianToken:F1} tok/s); weights read {weightBytes / 1e6:F0} MB/token");
Console.WriteLine($"probe {probe:F1} GB/s -> ideal token {weightBytes / probe / 1e6:F2} ms; the mean token reaches {weightBytes / (meanToken / 1000) / 1e9:F1} GB/s ({weightBytes / probe / 1e6 / meanToken:P0} of the probe)");
Console.WriteLine();
Console.WriteLine($"{"op",-34} {"calls/tok",9} {"ms/tok",8} {"% token",8} {"µs/call",9} {"GB/s",7}");
double opsMs = 0;
foreach (var (key, e) in timing.Totals.OrderByDescending(kv => kv.Value.Ticks))
{
    double ms = e.Ticks * 1000.0 / Stopwatch.Frequency / stepsPerKey;
    opsMs += ms * stepsPerKey / steps;
    string gbps = e.Bytes > 0 ? (e.Bytes / stepsPerKey / (ms / 1000) / 1e9).ToString("F1", CultureInfo.InvariantCulture) : "";
    Console.WriteLine($"{key,-34} {(double)e.Calls / stepsPerKey,9:F0} {ms,8:F3} {ms / meanToken,8:P1} {ms * 1000 / ((double)e.Calls / stepsPerKey),9:F1} {gbps,7}");
}
var linear = timing.Totals.Where(kv => kv.Key.StartsWith("Linear", StringComparison.Ordinal)).ToList();
double linearMs = linear.Sum(kv => kv.Value.Ticks) * 1000.0 / Stopwatch.Frequency / steps;
Console.WriteLine($"{"all Linear",-34} {linear.Sum(kv => kv.Value.Calls) / (double)steps,9:F0} {linearMs,8:F3} {linearMs / meanToken,8:P1} {"",9} {weightBytes / (linearMs / 1000) / 1e9,7:F1}");
Console.WriteLine($"{"other ops",-34} {"",9} {opsMs - linearMs,8:F3} {(opsMs - linearMs) / meanToken,8:P1}");
Console.WriteLine($"{"outside ops (model host code)",-34} {"",9} {meanToken - opsMs,8:F3} {(meanToken - opsMs) / meanToken,8:P1}");

// ids: batchSize equal runs of tokens, sequence s's run at positions start.. of its own block table; logits of each
// run's last token, or of every token.
ForwardBatch Batch(int[] ids, int start, bool allRows = false)
{
    int per = ids.Length / batchSize;
    int[] positions = Enumerable.Range(0, ids.Length).Select(i => start + i % per).ToArray();
    int[] slots = Enumerable.Range(0, ids.Length).Select(i => tables[i / per][positions[i] / blockSize] * blockSize + positions[i] % blockSize).ToArray();
    return new(ids, positions, slots, tables,
        Enumerable.Range(0, batchSize + 1).Select(s => s * per).ToArray(),
        Enumerable.Repeat(start + per, batchSize).ToArray(),
        allRows ? Enumerable.Range(0, ids.Length).ToArray() : Enumerable.Range(1, batchSize).Select(s => s * per - 1).ToArray());
}

static int[] Argmax(float[] v, int rows)
{
    int vocab = v.Length / rows;
    var best = new int[rows];
    for (int r = 0; r < rows; r++)
    {
        for (int i = 1; i < vocab; i++)
        {
            if (v[r * vocab + i] > v[r * vocab + best[r]])
                best[r] = i;
        }
    }
    return best;
}
