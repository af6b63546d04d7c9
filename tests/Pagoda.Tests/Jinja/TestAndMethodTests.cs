using Pagoda.Tokenization.Jinja;
using static Pagoda.Tests.Jinja.JinjaRender;

namespace Pagoda.Tests.Jinja;

public class TestAndMethodTests
{
    [Fact]
    public void TypeTests() =>
        Assert.Equal("TrueTrueTrueTrueTrueFalseTrueTrueTrueTrueFalseTrueTrueTrue",
            R("{{ none is none }}{{ 1 is number }}{{ 1.5 is number }}{{ 's' is string }}{{ 1 is integer }}{{ 1.0 is integer }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}{{ true is true }}{{ 0 is false }}{{ false is boolean }}{{ 1 is equalto 1 }}{{ 2 is eq(2) }}"));

    [Fact]
    public void OtherTests() =>
        Assert.Equal("TrueTrueTrueTrueTrueTrueTrue",
            R("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ x is undefined }}{{ 'a' is in 'abc' }}{{ 'ab' is lower }}{{ 1 is not string }}"));

    [Fact]
    public void StringPredicatesAndSplit() =>
        Assert.Equal("TrueTrue['a', 'b', '', 'c']['a', 'b']['a', 'b c']",
            R("{{ 'abc'.startswith('a') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}"));

    [Fact]
    public void StringTransforms() =>
        Assert.Equal("[x][a][q][q]bbABabHi There1 and x",
            R("[{{ '  x '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\nq'.lstrip('\\n') }}][{{ 'q  '.rstrip() }}]{{ 'aa'.replace('a', 'b') }}{{ 'ab'.upper() }}{{ 'AB'.lower() }}{{ 'hi there'.title() }}{{ '{} and {}'.format(1, 'x') }}"));

    [Fact]
    public void SplitIndexing() => Assert.Equal("pre", R("{{ '<tool_call>' in c and c.split('<tool_call>')[0] }}", """{"c": "pre<tool_call>x"}"""));

    [Fact]
    public void DictMethods() =>
        Assert.Equal("[('a', 1), ('b', 2)]['a', 'b'][1, 2]1Nonedflt",
            R("{{ d.items()|list }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 'dflt') }}", """{"d": {"a": 1, "b": 2}}"""));

    [Fact]
    public void Globals() => Assert.Equal("[0, 1, 2]{'a': 1, 'b': 2}[]", R("{{ range(3)|list }}{{ dict(a=1, b=2) }}{% set ns = namespace(x=[]) %}{{ ns.x }}"));

    [Fact]
    public void StrftimeNowUsesTheClock()
    {
        var opts = JinjaOptions.ChatTemplate with { Clock = () => new DateTime(2024, 7, 4, 15, 5, 9) };
        Assert.Equal("04 Jul 2024|2024-07-04 15:05:09|4 July|Thursday", R("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%-d %B') }}|{{ strftime_now('%A') }}", options: opts));
    }
}
