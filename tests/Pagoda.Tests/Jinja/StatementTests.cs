using static Pagoda.Tests.Jinja.JinjaRender;

namespace Pagoda.Tests.Jinja;

public class StatementTests
{
    [Theory]
    [InlineData("""{"a": false, "b": 1}""", "B")]
    [InlineData("""{"a": [], "b": ""}""", "C")]
    [InlineData("""{"a": "x"}""", "A")]
    public void IfElifElse(string vars, string expected) =>
        Assert.Equal(expected, R("{% if a %}A{% elif b %}B{% else %}C{% endif %}", vars));

    [Fact]
    public void DefinedTests() =>
        Assert.Equal("undef!", R("{% if not x is defined %}undef{% endif %}{% if x is not defined %}!{% endif %}"));

    [Fact]
    public void LoopVariables() =>
        Assert.Equal("10TrueFalse221 21FalseTrue210 ",
            R("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }} {% endfor %}",
              """{"xs": ["a", "b"]}"""));

    [Fact]
    public void LoopPrevNextCycle() =>
        Assert.Equal("-2/o 1-3/e 2-/o ",
            R("{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }}/{{ loop.cycle('o', 'e') }} {% endfor %}", """{"xs": [1, 2, 3]}"""));

    [Fact]
    public void ForElseRunsWhenEmpty() => Assert.Equal("empty", R("{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", """{"xs": []}"""));

    [Fact]
    public void TupleUnpackingOverItems() =>
        Assert.Equal("b=1;a=2;", R("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", """{"d": {"b": 1, "a": 2}}"""));

    [Fact]
    public void IteratingADictGivesKeysInOrder() => Assert.Equal("ba", R("{% for k in d %}{{ k }}{% endfor %}", """{"d": {"b": 1, "a": 2}}"""));

    [Fact]
    public void LoopFilterAffectsLoopLast() =>
        Assert.Equal("2False3True", R("{% for x in xs if x > 1 %}{{ x }}{{ loop.last }}{% endfor %}", """{"xs": [1, 2, 3]}"""));

    [Fact]
    public void BreakAndContinue() =>
        Assert.Equal("13", R("{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
            """{"xs": [1, 2, 3, 4, 5]}"""));

    [Fact]
    public void StringsAndRanges() =>
        Assert.Equal("a.b.012147", R("{% for x in 'ab' %}{{ x }}.{% endfor %}{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}"));

    [Fact]
    public void NestedLoopsHaveTheirOwnLoopVariable() =>
        Assert.Equal("131 142 231 242 ", R("{% for a in [1,2] %}{% for b in [3,4] %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{% endfor %}"));

    [Fact]
    public void SetInsideLoopDoesNotLeak() =>
        Assert.Equal("231", R("{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"));

    [Fact]
    public void NamespaceCarriesStateOutOfLoops() =>
        Assert.Equal("4x", R("{% set ns = namespace(a=1, b='x') %}{% for i in [1,2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}"));

    [Fact]
    public void SetWithTupleUnpacking() => Assert.Equal("1234", R("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (3, 4) %}{% set c, d = t %}{{ c }}{{ d }}"));

    [Fact]
    public void BlockSet() => Assert.Equal("[inner 2]", R("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]"));

    [Fact]
    public void SetInsideIfIsVisibleAfterwards() =>
        Assert.Equal("False", R("{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ add_generation_prompt }}"));

    [Fact]
    public void MacrosWithDefaultsAndKeywords() =>
        Assert.Equal("Hi Bob! Yo Al! Hey X!",
            R("{% macro greet(name, greeting='Hi') %}{{ greeting }} {{ name }}!{% endmacro %}{{ greet('Bob') }} {{ greet('Al', greeting='Yo') }} {{ greet('X', 'Hey') }}"));

    [Fact]
    public void MacroCalledInLoop() =>
        Assert.Equal("[a][b]", R("{%- macro render(m) -%}\n[{{ m.role }}]\n{%- endmacro -%}\n{% for m in ms %}{{ render(m) }}{% endfor %}",
            """{"ms": [{"role": "a"}, {"role": "b"}]}"""));

    [Fact]
    public void GenerationBlockRendersItsBody() => Assert.Equal("ab", R("a{% generation %}b{% endgeneration %}"));

    [Fact]
    public void ParsedTemplateRendersConcurrently()
    {
        var t = Pagoda.Tokenization.Jinja.JinjaTemplate.Parse("{% set ns = namespace(n=0) %}{% for i in range(x) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}");
        Parallel.For(0, 64, i =>
            Assert.Equal((i * (i - 1) / 2).ToString(), t.Render(new Dictionary<string, object?> { ["x"] = i })));
    }
}
