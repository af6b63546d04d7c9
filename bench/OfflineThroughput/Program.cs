using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Pagoda;

// Offline throughput of the embedded model: N chat prompts as one continuously batched job, repeated;
// prints each run and the medians. Usage: dotnet run -c Release --project bench/OfflineThroughput -- [prompts] [maxTokens] [runs]
int numPrompts = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 256;
int maxTokens = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 48;
int runs = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
string model = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "models", "fortune-chat");

using var llm = new LLM(new EngineArgs { Model = Path.GetFullPath(model) });
string[] topics = ["cats", "work", "love", "computers", "the sea", "money", "politics", "poetry", "history", "food"];
var prompts = Enumerable.Range(0, numPrompts).Select(i => llm.RenderChat(new JsonArray(
    new JsonObject { ["role"] = "user", ["content"] = $"Tell me a joke about {topics[i % topics.Length]}." }))).ToList();
// Fixed length outputs so runs compare: the model's sampling defaults, EOS ignored.
var p = llm.GetDefaultSamplingParams() with { MaxTokens = maxTokens, IgnoreEos = true, Seed = 0 };

var results = new List<(double Seconds, long In, long Out)>();
for (int r = 0; r < runs + 1; r++)
{
    var sw = Stopwatch.StartNew();
    var outputs = llm.Generate(prompts, p);
    sw.Stop();
    long inTok = outputs.Sum(o => o.PromptTokenIds.Count), outTok = outputs.Sum(o => o.Outputs[0].TokenIds.Count);
    if (r == 0)
        continue; // warm-up (JIT, page faults)
    results.Add((sw.Elapsed.TotalSeconds, inTok, outTok));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"run {r}: {sw.Elapsed.TotalSeconds:F2} s, {numPrompts / sw.Elapsed.TotalSeconds:F2} req/s, input {inTok / sw.Elapsed.TotalSeconds:F0} tok/s, output {outTok / sw.Elapsed.TotalSeconds:F0} tok/s"));
}
double Median(IEnumerable<double> xs) { var s = xs.OrderBy(x => x).ToArray(); return s[s.Length / 2]; }
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"median: {Median(results.Select(x => numPrompts / x.Seconds)):F2} req/s, output {Median(results.Select(x => x.Out / x.Seconds)):F0} tok/s, " +
    $"total {Median(results.Select(x => (x.In + x.Out) / x.Seconds)):F0} tok/s ({numPrompts} prompts, {maxTokens} output tokens each, prefix caching {(llm.Engine.Args.EnablePrefixCaching ? "on" : "off")})"));
