using static Pagoda.Tests.Jinja.JinjaRender;

namespace Pagoda.Tests.Jinja;

public class ExpressionTests
{
    [Fact]
    public void ConcatenationWithPlusAndTilde() =>
        Assert.Equal("ab1NoneTrue", R("{{ 'a' + \"b\" ~ 1 ~ none ~ true }}"));

    [Fact]
    public void Arithmetic() =>
        Assert.Equal("5.0 3 1 -4 8 -2 2.5", R("{{ 1 + 2 * 3 - 4 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ 2 ** 3 }} {{ -2 }} {{ 1.5 + 1 }}"));

    [Fact]
    public void PythonModuloAndFloorDivision() =>
        Assert.Equal("a1.0[1]2.50.5-112.0", R("{{ 'a' ~ 1.0 ~ [1] }}{{ 10 / 4 }}{{ 2 ** -1 }}{{ 5 % -3 }}{{ -5 % 3 }}{{ 5.5 // 2 }}"));

    [Fact]
    public void LiteralsRenderLikePython() =>
        Assert.Equal("[1, 'a', None, True, 1.5, {'k': 'v'}] (1, 2) (1,) {} []",
            R("{{ [1, 'a', none, true, 1.5, {'k': 'v'}] }} {{ (1, 2) }} {{ (1,) }} {{ {} }} {{ [] }}"));

    [Fact]
    public void StringEscapes() =>
        Assert.Equal("it's a\tb\\n x\ny [\"it's\", 'a\\nb']", R("{{ 'it\\'s' }} {{ \"a\\tb\\\\n\" }} {{ 'x\\ny' }} {{ ['it\\'s', 'a\\nb'] }}"));

    [Fact]
    public void FloatsFormatLikePythonRepr() =>
        Assert.Equal("1000.0 0.30000000000000004 0.3333333333333333 5.0 3.0 1e-07 1e+22 123.456",
            R("{{ 1e3 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 10/2 }} {{ 3.0 }} {{ 1e-7 }} {{ 1e22 }} {{ 123.456 }}"));

    [Fact]
    public void CapitalisedConstants() => Assert.Equal("TrueFalseNone", R("{{ True }}{{ False }}{{ None }}"));

    [Fact]
    public void MissingValuesAreUndefinedAndRenderEmpty() =>
        Assert.Equal("|||None", R("{{ x }}|{{ d.missing }}|{{ d['missing'] }}|{{ n }}", """{"d": {"a": 1}, "n": null}"""));

    [Fact]
    public void AttributeAndItemAccess() =>
        Assert.Equal("1132", R("{{ d.a }}{{ d['a'] }}{{ l[-1] }}{{ l[5] }}{{ l[1] }}", """{"d": {"a": 1}, "l": [1, 2, 3]}"""));

    [Fact]
    public void DictMethodsWinOverKeysForAttributeSyntax() =>
        Assert.Equal("2|[('items', 2)]", R("{{ d['items'] }}|{{ d.items()|list }}", """{"d": {"items": 2}}"""));

    [Fact]
    public void Comparisons() =>
        Assert.Equal("TrueTrueTrueTrueTrueTrueTrueTrue",
            R("{{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 1 in [1,2] }}{{ 'k' in {'k': 1} }}{{ 1 == 1.0 }}{{ 'a' != 'b' }}{{ 1 < 2 <= 2 }}{{ [1,2] < [1,3] }}"));

    [Fact]
    public void BooleanOperatorsReturnOperands() =>
        Assert.Equal("x|y|[]|True|False", R("{{ true and 'x' }}|{{ 0 or 'y' }}|{{ none or [] }}|{{ not 0 }}|{{ not 'a' }}"));

    [Fact]
    public void SequenceArithmetic() => Assert.Equal("[1, 2]ababxxx-311", R("{{ [1] + [2] }}{{ 'ab' * 2 }}{{ 3 * 'x' }}{{ -(3) }}{{ 10 - -1 }}"));

    [Fact]
    public void ConditionalExpression() =>
        Assert.Equal("n|1", R("{{ 'y' if 1 > 2 else 'n' }}{{ 'z' if false }}|{{ 1 if true else 2 if false else 3 }}"));

    [Fact]
    public void FilterBindsTighterThanMinus() =>
        Assert.Equal("2 3 -1", R("{% set x = [1,2,3] %}{{ x|length - 1 }} {{ x[x|length - 1] }} {{ -x[0] }}"));

    [Fact]
    public void Slicing() =>
        Assert.Equal("[4, 3, 2, 1][2, 3, 4][1, 2, 3][3, 4][1, 3]elolleh[][1, 2]",
            R("{{ l[::-1] }}{{ l[1:] }}{{ l[:-1] }}{{ l[-2:] }}{{ l[::2] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ l[5:] }}{{ l[-100:2] }}",
              """{"l": [1, 2, 3, 4]}"""));

    [Fact]
    public void SubscriptChains() => Assert.Equal("2c", R("{{ [1,2,3][1:][0] }}{{ 'abc'[-1] }}"));

    [Fact]
    public void PercentFormatting() => Assert.Equal("a=3x%", R("{{ '%s=%d' % ('a', 3) }}{{ 'x%%' % () }}"));
}
