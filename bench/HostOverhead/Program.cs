using System.Diagnostics;
using System.Globalization;
using Pagoda;
using Pagoda.Bench.HostOverhead;
using Pagoda.Engine;
using Pagoda.SpecDecode;
using Pagoda.Tokenization;

// The engine's host time per step at a large decode batch, without a GPU: the real LLMEngine (scheduler,
// batch building, sampling from top-k candidates, detokenization, outputs) over a model whose forward is
// free. Prints the median microseconds of each StepTimings phase over the steps where every sequence decodes.
// With "async" the forward reports itself still running, as CUDA graph replays do, so the engine defers output
// processing to the next step (on a GPU it overlaps the device's work; here it only moves between phases).
// "serial" is the sum less the sampling plan and the outputs, which a GPU's forward overlaps: the time it waits each step.
// The sixth argument picks the requests' sampling: greedy (default), defaults (Qwen2.5's generation_config: temperature
// 0.7, top-k 20, top-p 0.8, repetition penalty 1.1), t1 (temperature 1, a whole-row draw) or logprobs (greedy, 5 logprobs).
// The seventh argument is a --speculative-config JSON ("-" for none); the eighth picks the script: prose (default; it
// repeats, so prompt lookup finds it and its drafts are accepted), noise (seeded random ids: lookups rarely match) or
// mixed:R (the prose repeated, each token replaced by a random id with probability R: drafts found, some accepted).
// The ninth, FIXED:PER_TOKEN:VERIFY in microseconds, makes each forward take that long (DeviceCost), as a GPU's would.
// Usage: dotnet run -c Release --project bench/HostOverhead -- [seqs=256] [maxTokens=300] [runs=3] [final|delta|cumulative] [sync|async] [greedy|defaults|t1|logprobs] [SPEC_JSON|-] [prose|noise|mixed:R] [FIXED:PER_TOKEN:VERIFY]
int seqs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 256;
int maxTokens = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 300;
int runs = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
var kind = args.Length > 3 ? Enum.Parse<RequestOutputKind>(args[3] == "final" ? "FinalOnly" : args[3], ignoreCase: true) : RequestOutputKind.FinalOnly;
bool asynchronous = args.Length > 4 && args[4] == "async";
bool verbose = Environment.GetEnvironmentVariable("HOST_OVERHEAD_VERBOSE") == "1";
string model = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "models", "fortune-chat"));

// Ordinary prose with digits, punctuation and a few multi-byte characters (held back until complete).
const string Script = "A fortune cookie once told me that the best time to plant a tree was twenty years ago, " +
    "and the second best time is now. So I planted 3 trees, 2 cacti and a café au lait — naïvely, perhaps. " +
    "Tomorrow brings rain; today brings you a joke: why did the computer go to the doctor? It had a virus! ";
var tokenizer = Tokenizer.FromFolder(model);
int[] script = [.. tokenizer.Encode(Script, false)];
var spec = args.Length > 6 && args[6] != "-" ? SpeculativeConfig.Parse(args[6]) : null;
if (args.Length > 7 && args[7] != "prose")
{
    var random = new Random(7);
    int[] prose = script;
    script = args[7] == "noise" ? [.. Enumerable.Range(0, 4096).Select(_ => random.Next(300, 8000))]
        : args[7].StartsWith("mixed:") && double.TryParse(args[7][6..], CultureInfo.InvariantCulture, out double replaced)
        ? [.. Enumerable.Range(0, 4096).Select(i => random.NextDouble() < replaced ? random.Next(300, 8000) : prose[i % prose.Length])]
        : throw new ArgumentException($"unknown script '{args[7]}'");
}
var cost = args.Length > 8 ? DeviceCost.Parse(args[8]) : null;

var provider = new ScriptedProvider(script, asynchronous, cost);
using var engine = new LLMEngine(new EngineArgs
{
    Model = model, Device = "scripted", BackendProviders = [provider], MaxNumSeqs = seqs, MaxModelLen = 1024, GenerationConfig = "vllm",
    SpeculativeConfig = spec,
});
string[] topics = ["cats", "work", "love", "computers", "the sea", "money", "politics", "poetry", "history", "food"];
var greedy = new SamplingParams { Temperature = 0, MaxTokens = maxTokens, IgnoreEos = true, OutputKind = kind };
string sampling = args.Length > 5 ? args[5] : "greedy";
var p = sampling switch
{
    "greedy" => greedy,
    "defaults" => greedy with { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1, Seed = 1 },
    "t1" => greedy with { Temperature = 1.0, Seed = 1 },
    "logprobs" => greedy with { Logprobs = 5 },
    "llama" => greedy with { Temperature = 0.6, TopP = 0.9, Seed = 1 },
    _ => throw new ArgumentException($"unknown sampling '{sampling}'"),
};

var phases = new List<double>[10];
for (int i = 0; i < phases.Length; i++)
    phases[i] = [];
var wall = new List<double>();
var alloc = new List<double>();
var cpu = new List<double>();
var total = Stopwatch.StartNew();
long generatedBefore = 0;
// Warm-up runs let tiered compilation finish (hot methods reach optimized code only after a delay).
const int WarmUpRuns = 8;
for (int run = 0; run < runs + WarmUpRuns; run++)
{
    bool measured = run >= WarmUpRuns;
    for (int i = 0; i < seqs; i++)
        engine.AddRequest($"r{run}-{i}", new PromptInput { Text = $"Tell me a joke about {topics[i % topics.Length]}." }, p);
    int step = 0;
    if (run == WarmUpRuns)
    {
        total.Restart();
        generatedBefore = engine.Stats.GenerationTokens;
    }
    var runCpu = new List<double>();
    while (engine.HasUnfinishedRequests)
    {
        engine.Timings.Reset();
        provider.Model!.PlanTicks = 0;
        long bytes = GC.GetAllocatedBytesForCurrentThread();
        double cpu0 = ThreadClock.Microseconds();
        long t0 = Stopwatch.GetTimestamp();
        engine.Step();
        double us = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        double cpuUs = ThreadClock.Microseconds() - cpu0;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - bytes;
        // Steady state only: past the prefill steps, while every sequence still decodes.
        if (!measured || step++ < 4 || engine.Stats.NumRunning < seqs)
            continue;
        var (s, b, f, sa, u) = engine.Timings.PerStepMs();
        // Serial: what a GPU waits for between steps (the plan and the outputs overlap its forward).
        double plan = provider.Model!.PlanTicks * 1000.0 / Stopwatch.Frequency;
        double launch = engine.Timings.LaunchMs, outputs = engine.Timings.OutputsMs;
        double sum = s + b + f + sa + u;
        double[] values = [s, b, f, sa, u, sum, sum - plan - outputs, launch - plan, plan, u - outputs];
        for (int i = 0; i < values.Length; i++)
            phases[i].Add(values[i] * 1000);
        wall.Add(us);
        alloc.Add(allocated / 1024.0);
        cpu.Add(cpuUs);
        runCpu.Add(cpuUs);
    }
    if (verbose && measured)
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {run - WarmUpRuns + 1}: step CPU median {Median(runCpu):F1} us"));
}
double seconds = total.Elapsed.TotalSeconds;
long outputTokens = engine.Stats.GenerationTokens - generatedBefore;

static double Median(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Order().ElementAt(xs.Count / 2);
static double Mean(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Average();
static double P90(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Order().ElementAt(xs.Count * 9 / 10);
var inv = CultureInfo.InvariantCulture;
Console.WriteLine(string.Create(inv, $"{seqs} sequences x {maxTokens} tokens, {runs} runs, {kind}, {sampling} sampling, {(asynchronous ? "asynchronous" : "synchronous")} forward, {wall.Count} steady steps measured"));
if (engine.SpecDecodingStats is { } st)
    Console.WriteLine(string.Create(inv, $"  speculative: {st.NumDrafts} drafts, {st.NumDraftTokens} draft tokens, {st.NumAcceptedTokens} accepted"));
string[] names = ["schedule", "build", "forward", "sample", "update", "sum", "serial", " launch", " plan", " record"];
for (int i = 0; i < names.Length; i++)
    Console.WriteLine(string.Create(inv, $"  {names[i],-8} median {Median(phases[i]),8:F1} us   p90 {P90(phases[i]),8:F1} us"));
Console.WriteLine(string.Create(inv, $"  step     median {Median(wall),8:F1} us   p90 {P90(wall),8:F1} us   mean {Mean(wall),8:F1} us   allocated {Median(alloc):F0} KiB/step"));
Console.WriteLine(string.Create(inv, $"  step CPU median {Median(cpu),8:F1} us   p90 {P90(cpu),8:F1} us   (this thread's CPU time: robust to a busy machine)"));
Console.WriteLine(string.Create(inv, $"  host-only throughput {outputTokens / seconds:F0} output tok/s"));
