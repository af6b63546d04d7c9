using static Pagoda.Tests.Jinja.JinjaRender;

namespace Pagoda.Tests.Jinja;

public class FilterTests
{
    [Fact]
    public void Length() => Assert.Equal("3210", R("{{ 'abc'|length }}{{ [1,2]|count }}{{ {'a':1}|length }}{{ x|length }}"));

    [Fact]
    public void ToJsonUsesPythonSpacingAndKeepsOrderAndUnicode() =>
        Assert.Equal("""{"b": [1, 2.5, null, true], "a": {"x": "y"}}|[]|"é\"\n"|null|1.5""".Replace("\n\"", "\\n\""),
            R("{{ d|tojson }}|{{ l|tojson }}|{{ 'é\"\\n'|tojson }}|{{ none|tojson }}|{{ 1.5|tojson }}",
              """{"d": {"b": [1, 2.5, null, true], "a": {"x": "y"}}, "l": []}"""));

    [Fact]
    public void ToJsonDoesNotHtmlEscape() =>
        Assert.Equal("""[{"role": "user", "content": "日本 <b>&'"}]""", R("{{ ms|tojson }}", """{"ms": [{"role": "user", "content": "日本 <b>&'"}]}"""));

    [Fact]
    public void ToJsonIndent() =>
        Assert.Equal("{\n    \"a\": [\n        1,\n        {\n            \"b\": null\n        }\n    ],\n    \"c\": \"ü\"\n}",
            R("{{ t|tojson(indent=4) }}", """{"t": {"a": [1, {"b": null}], "c": "ü"}}"""));

    [Fact]
    public void StringCaseFilters() =>
        Assert.Equal("x|ABCabc|Hello world|Hello World-Foo (Bar)",
            R("{{ '  x  '|trim }}|{{ 'aBc'|upper }}{{ 'aBc'|lower }}|{{ 'hello wORLD'|capitalize }}|{{ 'hello wORLD-foo (bar)'|title }}"));

    [Fact]
    public void JoinFirstLastListItems() =>
        Assert.Equal("1, 2, 3|ab|ab|['a', 'b', 'c']|[('k', 1)]",
            R("{{ [1,2,3]|join(', ') }}|{{ xs|join }}|{{ xs|first }}{{ xs|last }}|{{ 'abc'|list }}|{{ d|items|list }}", """{"xs": ["a", "b"], "d": {"k": 1}}"""));

    [Fact]
    public void DefaultAndConversions() =>
        Assert.Equal("dflt||e|None|0434032.50.032.5",
            R("{{ x|default('dflt') }}|{{ ''|default('e') }}|{{ ''|default('e', true) }}|{{ none|d('n') }}|{{ 0|string }}{{ '42'|int + 1 }}{{ '4.7'|int }}{{ 'x'|int }}{{ 3.9|int }}{{ '2.5'|float }}{{ 'q'|float }}{{ -3|abs }}{{ (-2.5)|abs }}"));

    [Fact]
    public void ReplaceAndMap() =>
        Assert.Equal("a-b-|bba|x,y|['A', 'B']",
            R("{{ 'aXbX'|replace('X', '-') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ users|map(attribute='name')|join(',') }}|{{ ['a','b']|map('upper')|list }}",
              """{"users": [{"name": "x"}, {"name": "y"}]}"""));

    [Fact]
    public void SelectAttrAndRejectAttr() =>
        Assert.Equal("['x']['y']1",
            R("{{ users|selectattr('admin')|map(attribute='name')|list }}{{ users|rejectattr('admin')|map(attribute='name')|list }}{{ users|selectattr('name', 'equalto', 'y')|list|length }}",
              """{"users": [{"name": "x", "admin": true}, {"name": "y", "admin": false}]}"""));

    [Fact]
    public void SelectAndReject() => Assert.Equal("[1, 3][2, 4][1, 2]", R("{{ [1,2,3,4]|select('odd')|list }}{{ [1,2,3,4]|reject('odd')|list }}{{ [0,1,'',2]|select|list }}"));

    [Fact]
    public void UniqueSortReverseSafe() =>
        Assert.Equal("['b', 'A'][1, 2, 3]['A', 'b', 'c'][3, 2, 1][1, 2][2, 1]cbax",
            R("{{ ['b','A','a','B']|unique|list }}{{ [3,1,2]|sort }}{{ ['b','A','c']|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ users|sort(attribute='n')|map(attribute='n')|list }}{{ [1,2]|reverse|list }}{{ 'abc'|reverse }}{{ 'x'|safe }}",
              """{"users": [{"n": 2}, {"n": 1}]}"""));

    [Fact]
    public void SelectAttrWithLast() =>
        Assert.Equal("{'role': 'user', 'content': 'b'}",
            R("{{ ms|selectattr('role', 'equalto', 'user')|list|last }}", """{"ms": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}"""));

    [Fact]
    public void DefaultOnUndefinedTools() => Assert.Equal("0", R("{{ (tools|default([]))|length }}"));
}
