using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Tokenization;

// Tokenizer and chat-template speed: Pagoda beside HF tokenizers (Rust, via Tokenizers.DotNet) on the
// same 1 MiB of mixed text. Run: dotnet run -c Release --project bench/Pagoda.Bench [-- --runs N]
// The real tokenizers come from the test cache (.cache/npm); run the tests once first.
int runs = args.Length == 2 && args[0] == "--runs" ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 7;
string root = FindRoot();
var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "tests", "fixtures", "golden", "tokenizers.json")))!.AsObject();
string text = MixedText(golden, 1 << 20);
double mib = Encoding.UTF8.GetByteCount(text) / (double)(1 << 20);
Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd} {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");
Console.WriteLine($"text: {mib:F2} MiB, {text.Length} UTF-16 chars; median of {runs} runs after one warm-up\n");

Console.WriteLine("| tokenizer | Pagoda encode MiB/s | HF (Tokenizers.DotNet) MiB/s | same ids | Pagoda decode MiB/s | stream µs/token |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var name in new[] { "qwen3", "llama3", "llama2", "deepseek_v3" })
{
    string dir = Path.Combine(root, ".cache", "npm", name, "package", "models");
    if (!File.Exists(Path.Combine(dir, "tokenizer.json")))
    {
        Console.WriteLine($"| {name} | (not cached: run the tests first) | | | | |");
        continue;
    }
    var pagoda = Tokenizer.FromFolder(dir);
    IReadOnlyList<int> ids = [];
    double encode = Median(runs, () => ids = pagoda.Encode(text, addSpecialTokens: false));
    double decode = Median(runs, () => pagoda.Decode(ids));
    double stream = Median(3, () =>
    {
        var detok = new IncrementalDetokenizer(pagoda, []);
        foreach (int id in ids) detok.Push(id);
    });

    string hf = "n/a", same = "n/a";
    try
    {
        var rust = new Tokenizers.DotNet.Tokenizer(vocabPath: Path.Combine(dir, "tokenizer.json"));
        uint[] rustIds = [];
        double hfEncode = Median(runs, () => rustIds = rust.Encode(text));
        hf = $"{mib / hfEncode:F2}";
        // llama2 and deepseek_v3 differ by design: transformers v5 rebuilds them (see TransformersTokenizerClass).
        same = rustIds.Select(i => (int)i).SequenceEqual(ids) ? "yes" : "no";
    }
    catch (Exception e) when (e is DllNotFoundException or Tokenizers.DotNet.TokenizerException or TypeInitializationException)
    {
        hf = "failed: " + e.Message.Split('\n')[0];
    }
    Console.WriteLine($"| {name} | {mib / encode:F2} | {hf} | {same} | {mib / decode:F2} | {stream / ids.Count * 1e6:F2} |");
}

Console.WriteLine("\n| chat template | render µs (median of 2000) | template compile ms |");
Console.WriteLine("|---|---|---|");
foreach (var name in new[] { "qwen3", "llama3", "deepseek_v3" })
{
    string dir = Path.Combine(root, ".cache", "npm", name, "package", "models");
    if (!File.Exists(Path.Combine(dir, "tokenizer_config.json"))) continue;
    var compileWatch = Stopwatch.StartNew();
    var template = ChatTemplate.FromFolder(dir)!;
    double compileMs = compileWatch.Elapsed.TotalMilliseconds;
    var entry = golden[name]!["chat"]![4]!; // a three-turn conversation with the generation prompt
    var messages = entry["messages"]!.AsArray();
    bool addGen = entry["add_generation_prompt"]!.GetValue<bool>();
    var kwargs = entry["kwargs"]?.AsObject();
    for (int i = 0; i < 200; i++) template.Render(messages, addGen, null, kwargs);
    var times = new double[2000];
    for (int i = 0; i < times.Length; i++)
    {
        long t0 = Stopwatch.GetTimestamp();
        template.Render(messages, addGen, null, kwargs);
        times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
    }
    Array.Sort(times);
    Console.WriteLine($"| {name} ({messages.Count} messages) | {times[times.Length / 2]:F1} | {compileMs:F1} |");
}

static double Median(int runs, Action action)
{
    action(); // warm-up: JIT and the BPE word caches, on both sides
    var seconds = new double[runs];
    for (int i = 0; i < runs; i++)
    {
        long t0 = Stopwatch.GetTimestamp();
        action();
        seconds[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }
    Array.Sort(seconds);
    return seconds[runs / 2];
}

// English, code, Chinese, emoji and numbers: every golden encode text, repeated to the size asked for.
static string MixedText(JsonObject golden, int bytes)
{
    var pieces = golden.SelectMany(f => f.Value!["encode"]!.AsArray().Select(e => e!["text"]!.GetValue<string>()))
        .Where(t => t.Length > 0).Distinct().ToList();
    var sb = new StringBuilder();
    for (int i = 0, size = 0; size < bytes; i++)
    {
        string piece = pieces[i % pieces.Count] + "\n";
        sb.Append(piece);
        size += Encoding.UTF8.GetByteCount(piece);
    }
    return sb.ToString();
}

static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "Pagoda.slnx"))) return dir.FullName;
    throw new InvalidOperationException("Pagoda.slnx not found above " + AppContext.BaseDirectory);
}
