using Pagoda.Tokenization.Jinja;
using static Pagoda.Tests.Jinja.JinjaRender;

namespace Pagoda.Tests.Jinja;

public class WhitespaceTests
{
    [Fact]
    public void MinusStripsAllWhitespaceOnThatSide() =>
        Assert.Equal("abc d e", R("a  {{- 'b' -}}  c\n  {%- if true %} d {% endif -%}  \n e"));

    [Fact]
    public void TrimBlocksRemovesFirstNewlineAfterBlockTag() =>
        Assert.Equal("1\n2\n", R("{% for x in xs %}\n{{ x }}\n{% endfor %}", """{"xs": [1, 2]}"""));

    [Fact]
    public void LstripBlocksRemovesIndentBeforeBlockTag() =>
        Assert.Equal("    yes\nafter", R("  {% if true %}\n    yes\n  {% endif %}\nafter\n"));

    [Fact]
    public void LstripOnlyWhenTagStartsTheLine() =>
        Assert.Equal("x y z\n  1", R("x {% if true %}\ny{% endif %} z\n{% set a = 1 %}\n  {{ a }}\n"));

    [Fact]
    public void NestedBlocksOnTheirOwnLinesVanish() =>
        Assert.Equal("q\nz", R("{% if true %}\n  {% if true %}\nq\n  {% endif %}\n{% endif %}\nz"));

    [Fact]
    public void CommentsAreDroppedAndTrimmedLikeBlocks() =>
        Assert.Equal("A  B", R("{# comment #}\n  {# indented #}\nA {# inline #} B\n"));

    [Fact]
    public void PlusDisablesLstripAndTrim() =>
        Assert.Equal("line1\n    X\nline3", R("line1\n    {%+ if true %}X{% endif +%}\nline3"));

    [Fact]
    public void VariableTagsAreNotTrimmed() =>
        Assert.Equal("1\n2", R("{{ 1 }}\n{{ 2 }}\n"));

    [Fact]
    public void DefaultOptionsKeepBlockWhitespace() =>
        Assert.Equal("  \n    yes\n  \nafter", R("  {% if true %}\n    yes\n  {% endif %}\nafter\n", options: JinjaOptions.Default));

    [Fact]
    public void KeepTrailingNewlineOption()
    {
        Assert.Equal("a", R("a\n", options: JinjaOptions.Default));
        Assert.Equal("a\n", R("a\n", options: JinjaOptions.Default with { KeepTrailingNewline = true }));
    }

    [Fact]
    public void IndentedChatTemplateStyle() =>
        Assert.Equal("S\n<u>", R(
            "{%- for m in ms %}\n    {%- if m.role == 'system' %}\n        {{- m.content + '\\n' }}\n    {%- else %}\n" +
            "        {{- '<' + m.role + '>' }}\n    {%- endif %}\n{%- endfor %}\n",
            """{"ms": [{"role": "system", "content": "S"}, {"role": "u"}]}"""));

    [Fact]
    public void CrLfIsNormalised() =>
        Assert.Equal("a\nb", R("a\r\n{% if true %}\r\nb{% endif %}"));
}
