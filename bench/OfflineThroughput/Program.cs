using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Pagoda;

// Offline throughput of the embedded model: N chat prompts as one continuously batched job, repeated;
// prints each run and the medians. Usage: dotnet run -c Release --project bench/OfflineThroughput -- [prompts] [maxTokens] [runs] [schema]
// With "schema", each run is a pair: the same prompts unconstrained, then under a JSON schema whose outputs are long
// (structured outputs' cost per output token: grammar masks, full logits rows).
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

if (args.Length > 3 && args[3] == "schema")
{
    const string Schema = """
        {"type": "object", "properties": {"jokes": {"type": "array", "minItems": 40, "maxItems": 60,
         "items": {"type": "object", "properties": {"topic": {"type": "string", "enum": ["cats", "work", "love"]}, "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
                   "required": ["topic", "stars"], "additionalProperties": false}}}, "required": ["jokes"], "additionalProperties": false}
        """;
    var constrained = p with { IgnoreEos = false, StructuredOutputs = new StructuredOutputsParams { Json = Schema } };
    var ratios = new List<double>();
    for (int r = 0; r < runs + 1; r++)
    {
        double Rate(SamplingParams sp, out long tokens)
        {
            var sw = Stopwatch.StartNew();
            var outs = llm.Generate(prompts, sp);
            tokens = outs.Sum(o => (long)o.Outputs[0].TokenIds.Count);
            return tokens / sw.Elapsed.TotalSeconds;
        }
        double a = Rate(p, out long ta), b = Rate(constrained, out long tb);
        if (r == 0)
            continue;
        ratios.Add(b / a);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"run {r}: unconstrained {a:F0} output tok/s ({ta} tokens), JSON schema {b:F0} output tok/s ({tb} tokens), ratio {b / a:F3}"));
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median ratio {ratios.Order().ElementAt(ratios.Count / 2):F3} ({numPrompts} prompts, {maxTokens} tokens at most)"));
    return;
}

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
