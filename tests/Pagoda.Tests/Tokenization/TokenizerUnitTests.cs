using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

public sealed class UnicodeNfcTests
{
    // Expected values from Python's unicodedata.normalize("NFC", ...).
    [Theory]
    [InlineData("e\u0301", "\u00E9")]
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]
    [InlineData("a\u0323\u0302", "\u1EAD")]
    [InlineData("\u1E0B\u0323", "\u1E0D\u0307")]
    [InlineData("\u212B", "\u00C5")]
    [InlineData("A\u030A\u0301", "\u01FA")]
    [InlineData("\u0344", "\u0308\u0301")]
    [InlineData("\U0001D15E", "\U0001D157\U0001D165")]
    [InlineData("q\u0307\u0323", "q\u0323\u0307")]
    [InlineData("plain ascii", "plain ascii")]
    public void Matches_python(string input, string expected) =>
        Assert.Equal(expected, UnicodeNfc.Normalize(input));
}

public sealed class HfRegexTests
{
    private const string QwenPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static List<string> Split(string text)
    {
        var output = new List<string>();
        SplitPreTokenizer.Split(text, new HfRegex(QwenPattern), SplitBehavior.Isolated, false, output);
        return output;
    }

    [Fact]
    public void Astral_letters_and_digits_count_as_letters_and_digits()
    {
        // U+20000 is a CJK letter and U+1D7CF a digit outside the BMP; Oniguruma sees them as \p{L} and \p{N}.
        Assert.Equal(["a\U00020000b"], Split("a\U00020000b"));
        Assert.Equal(["\U0001D7CF", "\U0001D7D0"], Split("\U0001D7CF\U0001D7D0"));
        Assert.Equal(["x", " \U0001F44B\U0001F3FD"], Split("x \U0001F44B\U0001F3FD"));
    }

    [Theory]
    [InlineData("Removed", false, new[] { "a", "b" })]
    [InlineData("Isolated", false, new[] { "a", "-", "b" })]
    [InlineData("MergedWithPrevious", false, new[] { "a-", "b" })]
    [InlineData("MergedWithNext", false, new[] { "a", "-b" })]
    [InlineData("Removed", true, new[] { "-" })]
    public void Split_behaviors(string behavior, bool invert, string[] expected)
    {
        var output = new List<string>();
        SplitPreTokenizer.Split("a-b", new HfRegex("-"), Enum.Parse<SplitBehavior>(behavior), invert, output);
        Assert.Equal(expected, output);
    }

    [Fact]
    public void Contiguous_merges_adjacent_delimiters()
    {
        var output = new List<string>();
        SplitPreTokenizer.Split("a--b", new HfRegex("-"), SplitBehavior.Contiguous, false, output);
        Assert.Equal(["a", "--", "b"], output);
    }
}

public sealed class AddedTokenMatcherTests
{
    private static AddedToken Token(int id, string content, bool lstrip = false, bool rstrip = false, bool singleWord = false) =>
        new(id, content, true, lstrip, rstrip, singleWord, false);

    [Fact]
    public void Longest_match_wins_and_strip_flags_take_whitespace()
    {
        var matcher = new AddedTokenMatcher([
            ("<a>", Token(1, "<a>")), ("<a><b>", Token(2, "<a><b>")), ("<m>", Token(3, "<m>", lstrip: true, rstrip: true))]);
        var parts = matcher.Split("x<a><b>y  <m>  z<a>");
        Assert.Equal(["x", "<a><b>", "y", "  <m>  ", "z", "<a>"], parts.Select(p => p.Text));
        Assert.Equal([null, 2, null, 3, null, 1], parts.Select(p => p.Token?.Id));
    }

    [Fact]
    public void Single_word_tokens_need_word_boundaries()
    {
        var matcher = new AddedTokenMatcher([("cat", Token(1, "cat", singleWord: true))]);
        Assert.Equal([null], matcher.Split("concat").Select(p => p.Token?.Id));
        Assert.Equal([null, 1, null], matcher.Split("a cat b").Select(p => p.Token?.Id));
    }
}
