using System.Text;
using System.Text.Json.Nodes;
using Pagoda.StructuredOutput;
using static Pagoda.Tests.StructuredOutput.GrammarKit;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>
/// Random generation through the mask: at each step pick uniformly among the allowed tokens (half the time
/// among the one-byte ones, so structures close), take EOS with some probability when it is allowed, cap
/// the length. Every finished output must be valid JSON that validates against the schema (checked with
/// JsonSchema.Net), or match the regex (checked with System.Text.RegularExpressions).
/// </summary>
public class RandomWalkPropertyTests
{
    private const int Seeds = 120;

    public static TheoryData<string> Schemas() =>
    [
        """{"type":"object","properties":{"name":{"type":"string","maxLength":8},"age":{"type":"integer","minimum":0,"maximum":120},"tags":{"type":"array","items":{"enum":["a","b","c"]},"minItems":1,"maxItems":3},"address":{"type":"object","properties":{"zip":{"type":"string","pattern":"^[0-9]{5}$"},"city":{"type":"string","maxLength":5}},"required":["zip"],"additionalProperties":false}},"required":["name","age"],"additionalProperties":false}""",
        """{"$defs":{"tree":{"type":"object","properties":{"v":{"type":"integer","minimum":-5,"maximum":5},"kids":{"type":"array","items":{"$ref":"#/$defs/tree"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/tree"}""",
        """{"type":"array","items":{"anyOf":[{"type":"number","minimum":-10,"maximum":10},{"type":"string","maxLength":4},{"type":"null"},{"type":"boolean"}]},"maxItems":5}""",
        """{"type":"object","properties":{"x":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1.5},"y":{"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":1000},"z":{"type":["integer","null"]},"w":{"type":"number"}},"required":["x","y","z","w"],"additionalProperties":false}""",
        """{"type":"array","prefixItems":[{"const":"head"},{"type":"integer"}],"items":{"type":"boolean"},"minItems":2,"maxItems":6}""",
        """{"oneOf":[{"enum":["red","green",7,null,true]},{"type":"object","properties":{"k":{"const":[1,"2"]}},"required":["k"],"additionalProperties":false}]}""",
        """{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"when":{"type":"string","format":"date-time"},"n":{"type":["string","null"],"minLength":2,"maxLength":3}},"required":["id","when","n"],"additionalProperties":false}""",
    ];

    [Theory]
    [MemberData(nameof(Schemas))]
    public void FinishedOutputsValidateAgainstTheSchema(string schemaText)
    {
        var g = Compiler().JsonSchema(schemaText);
        var schema = Json.Schema.JsonSchema.FromText(schemaText);
        int finished = 0;
        for (int seed = 0; seed < Seeds; seed++)
        {
            if (Walk(g, seed, 300) is not string output) continue;
            finished++;
            JsonNode? node;
            try { node = JsonNode.Parse(output); }
            catch (System.Text.Json.JsonException e) { throw new Xunit.Sdk.XunitException($"seed {seed}: not JSON: {output}\n{e.Message}"); }
            var result = schema.Evaluate(node);
            Assert.True(result.IsValid, $"seed {seed}: invalid against the schema: {output}");
        }
        Assert.True(finished >= Seeds / 4, $"only {finished} of {Seeds} walks finished");
    }

    [Theory]
    [InlineData(@"[a-z]{1,5}(-[0-9]+)?")]
    [InlineData(@"(ab|cd)*e?f{2,3}")]
    [InlineData(@"\d{3}-\d{4}|\(\d\)\s\w+")]
    [InlineData(@"[^a-z\n]{2,6}\.")]
    [InlineData(@"(x|y(z|w)*)+")]
    [InlineData(@"(a*)*b")]
    public void FinishedOutputsMatchTheRegex(string pattern)
    {
        var g = Compiler().Regex(pattern);
        var re = new System.Text.RegularExpressions.Regex("^(?:" + pattern + @")\z");
        int finished = 0;
        for (int seed = 0; seed < Seeds; seed++)
        {
            if (Walk(g, seed, 100) is not string output) continue;
            finished++;
            // .NET counts UTF-16 units, the automaton code points: a supplementary character (reachable only
            // through negated classes here) becomes one private-use character, which the same classes match.
            string units = string.Concat(output.EnumerateRunes().Select(r => r.IsBmp ? r.ToString() : "\uE000"));
            Assert.True(re.IsMatch(units), $"seed {seed}: '{output}' does not match /{pattern}/");
        }
        Assert.True(finished >= Seeds / 4, $"only {finished} of {Seeds} walks finished");
    }

    /// <summary>One seeded walk; the output text when it ended with EOS, null when it hit the cap.</summary>
    internal static string? Walk(CompiledGrammar g, int seed, int maxTokens)
    {
        var rnd = new Random(seed);
        var m = new GrammarMatcher(g);
        var bytes = new List<byte>();
        var mask = new int[Vocab.BitmaskWords];
        var allowed = new List<int>();
        var short1 = new List<int>();
        for (int step = 0; step < maxTokens; step++)
        {
            m.FillNextTokenBitmask(mask);
            allowed.Clear();
            short1.Clear();
            for (int id = 0; id < Vocab.Size; id++)
            {
                if (!Allowed(mask, id) || Vocab.IsEos(id)) continue;
                allowed.Add(id);
                if (Vocab.TokenBytes(id)!.Length == 1) short1.Add(id);
            }
            bool eos = Allowed(mask, ImEnd);
            Assert.Equal(m.CanTerminate, eos);
            if (eos && (allowed.Count == 0 || rnd.NextDouble() < 0.3))
            {
                Assert.True(m.AcceptToken(ImEnd));
                return Encoding.UTF8.GetString(bytes.ToArray());
            }
            Assert.True(allowed.Count > 0, $"seed {seed}: a dead end after '{Encoding.UTF8.GetString(bytes.ToArray())}'");
            var pool = short1.Count > 0 && rnd.NextDouble() < 0.5 ? short1 : allowed;
            int pick = pool[rnd.Next(pool.Count)];
            Assert.True(m.AcceptToken(pick));
            bytes.AddRange(Vocab.TokenBytes(pick)!);
        }
        return null;
    }
}
