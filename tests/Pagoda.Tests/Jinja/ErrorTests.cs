using Pagoda.Tokenization.Jinja;
using static Pagoda.Tests.Jinja.JinjaRender;

namespace Pagoda.Tests.Jinja;

public class ErrorTests
{
    private static JinjaException Fails(string template, string? json = null) => Assert.Throws<JinjaException>(() => R(template, json));

    [Fact]
    public void RaiseExceptionCarriesMessageAndLine()
    {
        var e = Fails("line1\n{{ raise_exception('bad input') }}");
        Assert.Equal(2, e.Line);
        Assert.Equal("line 2: bad input", e.Message);
    }

    [Fact]
    public void UnknownFilterFailsAtParseTimeWithLine()
    {
        // Inside a branch that never runs: still rejected, because Jinja checks filter names when compiling.
        var e = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse("a\n{% if false %}\n{{ x | nosuchfilter }}{% endif %}"));
        Assert.Equal("line 3: no filter named 'nosuchfilter'", e.Message);
    }

    [Fact]
    public void UnknownFilterByNameInMapFailsAtRenderTime() =>
        Assert.Equal("line 2: no filter named 'bogus'", Fails("\n{{ [1]|map('bogus')|list }}").Message);

    [Fact]
    public void MismatchedEndTag()
    {
        var e = Fails("{% if x %}\nfoo\n{% endfor %}");
        Assert.Equal(3, e.Line);
        Assert.Contains("unknown tag 'endfor'", e.Message);
    }

    [Fact]
    public void MissingEndTagIsReportedAtTheEnd()
    {
        var e = Fails("{% for x in y %}\n\nno end");
        Assert.Equal(3, e.Line);
        Assert.Contains("expected 'else' or 'endfor'", e.Message);
    }

    [Fact]
    public void SyntaxErrorInExpression() => Assert.Equal("line 1: unexpected end of print statement", Fails("{{ 1 +  }}").Message);

    [Fact]
    public void TypeErrorNamesLine() => Assert.Equal("line 3: unsupported operand type(s) for +: 'str' and 'int'", Fails("\n\n{{ 'a' + 1 }}").Message);

    [Fact]
    public void AttributeOfUndefinedFails() => Assert.Equal("line 1: 'x' is undefined", Fails("{{ x.y.z }}").Message);

    [Fact]
    public void UnknownTest() => Assert.Equal("line 2: no test named 'bogus'", Fails("\n{{ 1 is bogus }}").Message);

    [Fact]
    public void UnterminatedString() => Assert.Equal(1, Fails("{{ 'abc }}").Line);

    [Fact]
    public void AssigningAttributeOfNonNamespace() => Assert.Contains("non-namespace", Fails("{% set d = {} %}{% set d.x = 1 %}").Message);
}
