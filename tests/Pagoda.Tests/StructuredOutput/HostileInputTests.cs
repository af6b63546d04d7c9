using System.Diagnostics;
using System.Text;
using Pagoda.StructuredOutput;
using static Pagoda.Tests.StructuredOutput.GrammarKit;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>Inputs built to exhaust time, memory or the stack fail fast with a GrammarException.</summary>
public class HostileInputTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private static void FailsFast(Func<CompiledGrammar> compile)
    {
        var clock = Stopwatch.StartNew();
        Assert.Throws<GrammarException>(() => compile());
        Assert.True(clock.Elapsed < Bound, $"took {clock.Elapsed}");
    }

    [Fact]
    public void HugeEnum()
    {
        var values = string.Join(",", Enumerable.Range(0, 100_000).Select(i => $"\"value{i}\""));
        FailsFast(() => Compiler().JsonSchema($$"""{"enum":[{{values}}]}"""));
        FailsFast(() => Compiler().Choice(Enumerable.Range(0, 100_000).Select(i => "c" + i).ToList()));
    }

    [Fact]
    public void DeepNesting()
    {
        var deep = new StringBuilder();
        for (int i = 0; i < 10_000; i++) deep.Append("{\"type\":\"array\",\"items\":");
        deep.Append("{}").Append('}', 10_000);
        FailsFast(() => Compiler().JsonSchema(deep.ToString()));
        FailsFast(() => Compiler().Regex(new string('(', 10_000) + "a" + new string(')', 10_000)));
        FailsFast(() => Compiler().Grammar("root ::= " + new string('(', 10_000) + "\"a\"" + new string(')', 10_000)));
        var anyOf = new StringBuilder();
        for (int i = 0; i < 5_000; i++) anyOf.Append("{\"anyOf\":[");
        anyOf.Append("{}").Append(']', 1).Append(string.Concat(Enumerable.Repeat("]}", 4_999))).Append('}');
        FailsFast(() => Compiler().JsonSchema(anyOf.ToString()));
    }

    [Fact]
    public void CatastrophicRegexes()
    {
        // Nested quantifiers without a group between them are a syntax error, as in .NET and JavaScript.
        FailsFast(() => Compiler().Regex("(a|a)*{1000}"));
        FailsFast(() => Compiler().Regex("a{1,100000}"));
        FailsFast(() => Compiler().Regex("(((a{1,1000}){1,1000}){1,1000})"));
        FailsFast(() => Compiler().Regex("[ab]*a[ab]{30}"));   // a DFA of 2^30 states
        FailsFast(() => Compiler().JsonSchema("""{"type":"string","maxLength":1000000}"""));
        FailsFast(() => Compiler().JsonSchema("""{"type":"array","minItems":99999999}"""));
        // Backtracking killers are harmless to an automaton: they compile quickly and match correctly.
        var clock = Stopwatch.StartNew();
        var g = Compiler().Regex("(a*)*b");
        Assert.True(Matches(g, "aaaaab"));
        Assert.False(Matches(g, new string('a', 5000)));
        var h = Compiler().Regex("((a|a)*){20}c");
        Assert.True(Matches(h, "aaac"));
        Assert.True(clock.Elapsed < Bound);
    }

    [Fact]
    public void TimeBudgetIsEnforced()
    {
        var tight = new GrammarLimits(CompileBudget: TimeSpan.FromMilliseconds(1), MaxStates: 10_000_000, MaxRepeat: 100_000);
        FailsFast(() => Compiler(tight).Regex("[a-z0-9]{1,5000}x[a-z]{1,5000}"));
    }

    [Fact]
    public void HugeSource()
    {
        var limits = new GrammarLimits(MaxSourceLength: 1000);
        FailsFast(() => Compiler(limits).Regex(new string('a', 1001)));
        FailsFast(() => Compiler(limits).Grammar("root ::= \"" + new string('a', 1000) + "\""));
    }
}
