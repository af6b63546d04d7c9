using System.Text;
using Pagoda.StructuredOutput;
using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>Shared fixtures: the fortune-chat vocabulary, a compiler over it, and text/token drivers.</summary>
public static class GrammarKit
{
    public const int FortuneModelVocab = 8256;
    public const int ImEnd = 8194;
    public const int EndOfText = 8192;

    private static readonly Lazy<Tokenizer> FortuneTokenizer = new(() => Tokenizer.FromFolder(TestPaths.Model("fortune-chat")));
    private static readonly Lazy<TokenVocabulary> FortuneVocab =
        new(() => TokenVocabulary.FromTokenizer(FortuneTokenizer.Value, FortuneModelVocab, [ImEnd, EndOfText]));

    public static Tokenizer Tokenizer => FortuneTokenizer.Value;

    public static TokenVocabulary Vocab => FortuneVocab.Value;

    public static GrammarCompiler Compiler(GrammarLimits? limits = null) => new(Vocab, limits);

    /// <summary>Whether the whole text is a complete match.</summary>
    public static bool Matches(CompiledGrammar g, string text)
    {
        var m = new GrammarMatcher(g);
        return m.AcceptString(text) && m.CanTerminate;
    }

    /// <summary>Whether the text can still be extended into a match (feeding it byte by byte).</summary>
    public static bool IsPrefix(CompiledGrammar g, string text)
    {
        var m = new GrammarMatcher(g);
        foreach (byte b in Encoding.UTF8.GetBytes(text)) if (!m.AcceptBytes([b])) return false;
        return true;
    }

    public static int[] Mask(GrammarMatcher m, TokenVocabulary? vocab = null)
    {
        var mask = new int[(vocab ?? Vocab).BitmaskWords];
        m.FillNextTokenBitmask(mask);
        return mask;
    }

    public static bool Allowed(int[] mask, int id) => (mask[id >> 5] & (1 << (id & 31))) != 0;

    public static List<int> AllowedIds(int[] mask, int size) => Enumerable.Range(0, size).Where(i => Allowed(mask, i)).ToList();
}
