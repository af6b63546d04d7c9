using System.Diagnostics;
using Pagoda.StructuredOutput;
using Pagoda.Tests.Support;
using Pagoda.Tokenization;
using Xunit.Abstractions;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>
/// Compile and mask timings with the real Qwen3 vocabulary (151,936 ids). Runs only when
/// PAGODA_GRAMMAR_TIMINGS=1, since it loads a large tokenizer; prints its numbers to the test log.
/// </summary>
public class GrammarTimings(ITestOutputHelper log)
{
    public const string ToolSchema = """
        {"type":"object","properties":{
          "location":{"type":"string","description":"City name"},
          "unit":{"type":"string","enum":["celsius","fahrenheit"]},
          "days":{"type":"integer","minimum":1,"maximum":14},
          "include_hourly":{"type":"boolean"},
          "coordinates":{"type":"object","properties":{"lat":{"type":"number"},"lon":{"type":"number"}},"required":["lat","lon"],"additionalProperties":false}},
         "required":["location","unit","days","include_hourly","coordinates"],"additionalProperties":false}
        """;

    public const string Output = """{"location": "San Francisco, CA", "unit": "celsius", "days": 7, "include_hourly": false, "coordinates": {"lat": 37.7749, "lon": -122.4194}}""";

    [Fact]
    public void QwenCompileAndMaskTimes()
    {
        if (Environment.GetEnvironmentVariable("PAGODA_GRAMMAR_TIMINGS") != "1") return;
        var clock = Stopwatch.StartNew();
        var tok = Tokenizer.FromFolder(NpmTokenizers.Folder("qwen3"));
        log.WriteLine($"tokenizer load: {clock.ElapsedMilliseconds} ms");
        clock.Restart();
        var vocab = TokenVocabulary.FromTokenizer(tok, 151_936, [151_645, 151_643]);
        log.WriteLine($"vocabulary + trie: {clock.ElapsedMilliseconds} ms");

        // Compile: distinct sources so the compiler's cache never answers; the first ones warm the JIT.
        var times = new List<double>();
        for (int i = 0; i < 30; i++)
        {
            var compiler = new GrammarCompiler(vocab);
            string schema = ToolSchema.Replace("City name", "City name " + i);
            clock.Restart();
            compiler.JsonSchema(schema);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        log.WriteLine($"compile tool schema: first {times[0]:0.00} ms, median of last 20 {Median(times.Skip(10)):0.000} ms, max {times.Skip(10).Max():0.000} ms");

        var g = new GrammarCompiler(vocab).JsonSchema(ToolSchema);
        log.WriteLine($"automaton nodes: {g.NodeCount}");
        var ids = tok.Encode(Output, false);
        var mask = new int[vocab.BitmaskWords];
        for (int pass = 0; pass < 3; pass++)
        {
            var m = new GrammarMatcher(g);
            var perToken = new List<double>();
            foreach (int id in ids)
            {
                clock.Restart();
                m.FillNextTokenBitmask(mask);
                perToken.Add(clock.Elapsed.TotalMilliseconds);
                Assert.True((mask[id >> 5] & (1 << (id & 31))) != 0, $"token {id} '{tok.IdToToken(id)}' not allowed");
                Assert.True(m.AcceptToken(id));
            }
            clock.Restart();
            m.FillNextTokenBitmask(mask);
            perToken.Add(clock.Elapsed.TotalMilliseconds);
            Assert.True(m.CanTerminate);
            log.WriteLine($"pass {pass}: {ids.Count + 1} masks, total {perToken.Sum():0.0} ms, median {Median(perToken):0.000} ms, max {perToken.Max():0.000} ms");
        }

        // A different output through the same grammar: new full states, but node masks already cached.
        var other = tok.Encode("""{"location":"Oslo","unit":"fahrenheit","days":14,"include_hourly":true,"coordinates":{"lat":-1.5,"lon":2}}""", false);
        var mm = new GrammarMatcher(g);
        var t2 = new List<double>();
        foreach (int id in other)
        {
            clock.Restart();
            mm.FillNextTokenBitmask(mask);
            t2.Add(clock.Elapsed.TotalMilliseconds);
            Assert.True(mm.AcceptToken(id));
        }
        log.WriteLine($"second output: {other.Count} masks, total {t2.Sum():0.0} ms, median {Median(t2):0.000} ms, max {t2.Max():0.000} ms");
    }

    private static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToList();
        return s[s.Count / 2];
    }
}
