using Pagoda.StructuredOutput;
using static Pagoda.Tests.StructuredOutput.GrammarKit;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>Regex constructs and choice lists, each checked against texts fed through the automaton.</summary>
public class RegexAndChoiceTests
{
    private static void Check(string pattern, string[] accepted, string[] rejected)
    {
        var g = Compiler().Regex(pattern);
        foreach (var a in accepted) Assert.True(Matches(g, a), $"/{pattern}/ should accept '{a}'");
        foreach (var r in rejected) Assert.False(Matches(g, r), $"/{pattern}/ should reject '{r}'");
    }

    [Fact] public void Literals() => Check("abc", ["abc"], ["ab", "abcd", "", "xabc"]);

    [Fact] public void Escapes() => Check(@"a\.b\*\n\t\x41\u00e9", ["a.b*\n\tAé"], ["axb*\n\tAé"]);

    [Fact] public void Classes() => Check("[a-c][^a-c][0-9_]", ["ax_", "cZ5"], ["aa1", "dx1"]);

    [Fact] public void ShorthandClasses() => Check(@"\d\w\s\D\W\S", ["5a z!-"], ["aa z!-", "5a z!", "5a zz-"]);

    [Fact] public void ShorthandInsideClasses() => Check(@"[\d\s-]+", ["1 2-3"], ["1a"]);

    [Fact] public void DotIsAnyCharacterButNewlines() => Check("a.c", ["abc", "a€c", "a😀c"], ["a\nc", "ac"]);

    [Fact] public void UnicodeRangesAcrossUtf8Lengths() => Check("[\u00e0-\u4e00]+", ["\u00e0\u07ff\u0800\u4e00"], ["a", "\u4e01"]);

    [Fact] public void Groups() => Check("(ab)+(?:cd)?(?<n>e)", ["abe", "ababcde"], ["abcd", "e"]);

    [Fact] public void Alternation() => Check("cat|dog|(bird|fish)s?", ["cat", "dog", "birds", "fish"], ["cats", "do"]);

    [Fact] public void Quantifiers() => Check("a?b*c+d{2}e{1,2}f{2,}g*?", ["cddeff", "abbbccddeefff", "ccddefffgg"], ["ddeff", "cdeff", "cddeeeff", "cddeef"]);

    [Fact] public void Anchors() => Check("^ab+$", ["ab", "abbb"], ["a", "abc"]);

    [Fact] public void LiteralBraceWhenNotAQuantifier() => Check("a{x}", ["a{x}"], ["a"]);

    [Fact]
    public void UnsupportedConstructsThrow()
    {
        foreach (var p in (string[])[@"(a)\1", "a(?=b)", "a(?!b)", "(?<=a)b", "(?i)a", @"\bword", @"\p{L}", "a**", "a{2}{3}", "a^b", "(ab", "ab)", "*a", @"a\"])
            Assert.Throws<GrammarException>(() => Compiler().Regex(p));
    }

    [Fact]
    public void Choice()
    {
        var g = Compiler().Choice(["yes", "no", "maybe so", "日本"]);
        foreach (var a in (string[])["yes", "no", "maybe so", "日本"]) Assert.True(Matches(g, a));
        foreach (var r in (string[])["ye", "yess", "maybe", ""]) Assert.False(Matches(g, r));
        Assert.True(Compiler().Choice(["a", "ab"]) is var prefixes && Matches(prefixes, "a") && Matches(prefixes, "ab"));
        Assert.Throws<GrammarException>(() => Compiler().Choice([]));
    }
}
