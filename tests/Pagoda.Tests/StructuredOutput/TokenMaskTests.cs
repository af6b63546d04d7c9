using System.Text;
using Pagoda.StructuredOutput;
using static Pagoda.Tests.StructuredOutput.GrammarKit;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>
/// The mask allows exactly the tokens whose bytes keep the automaton alive (checked against feeding every
/// token to a forked matcher), EOS only in accepting states, and the vocabulary maps tokens to their bytes.
/// </summary>
public class TokenMaskTests
{
    public static TheoryData<string, string, string> Cases() => new()
    {
        { "json", """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"type":"string"}}},"required":["name"]}""", """{"name": "Al""" },
        { "json", """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}""", """{"name":"x","age":1""" },
        { "json", """{"$defs":{"t":{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/t"},{"type":"integer"}]}}},"$ref":"#/$defs/t"}""", "[[1,[2" },
        { "json", """{"enum":["alpha","beta","gamma"]}""", "\"" },
        { "regex", @"[a-z]+(, [a-z]+)*\.", "abc, de" },
        { "grammar", "root ::= \"(\" root \")\" | \"x\"", "((" },
        { "choice", "", "" },
    };

    private static CompiledGrammar Compile(string kind, string source) => kind switch
    {
        "json" => Compiler().JsonSchema(source),
        "regex" => Compiler().Regex(source),
        "grammar" => Compiler().Grammar(source),
        _ => Compiler().Choice(["apple pie", "apple", "banana split", "cherry"]),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MaskEqualsTheTokensThatKeepTheStateAlive(string kind, string source, string prefix)
    {
        var g = Compile(kind, source);
        var m = new GrammarMatcher(g);
        Assert.True(m.AcceptString(prefix));
        // Twice: the second comes from the per-state cache and must be identical.
        for (int round = 0; round < 2; round++)
        {
            var mask = Mask(m);
            for (int id = 0; id < Vocab.Size; id++)
            {
                bool expected = m.Fork().AcceptToken(id);
                Assert.True(expected == Allowed(mask, id), $"token {id} ({Tokenizer.IdToToken(id)}): expected {expected}");
            }
        }
        // Tokens outside the tokenizer (padding ids up to the model's width) are never allowed.
        Assert.False(Allowed(Mask(m), FortuneModelVocab - 1));
    }

    [Fact]
    public void EosOnlyWhenAccepting()
    {
        var g = Compiler().Regex("ab|abcd");
        var m = new GrammarMatcher(g);
        Assert.False(Allowed(Mask(m), ImEnd));
        Assert.False(m.AcceptToken(ImEnd));
        Assert.True(m.AcceptString("ab"));
        Assert.True(m.CanTerminate);
        Assert.False(m.IsTerminated);
        var mask = Mask(m);
        Assert.True(Allowed(mask, ImEnd) && Allowed(mask, EndOfText));
        Assert.True(m.AcceptString("cd"));
        Assert.True(m.IsTerminated); // nothing but EOS can follow
        Assert.Equal([EndOfText, ImEnd], AllowedIds(Mask(m), Vocab.Size));
        Assert.True(m.AcceptToken(ImEnd));
        Assert.True(m.IsTerminated);
        Assert.False(m.CanTerminate);
        Assert.False(m.AcceptToken(ImEnd));
    }

    [Fact]
    public void RejectedTokenLeavesStateUnchanged()
    {
        var m = new GrammarMatcher(Compiler().Regex("abc"));
        int x = Tokenizer.Encode("x", false)[0];
        Assert.False(m.AcceptToken(x));
        Assert.True(m.AcceptString("abc"));
    }

    [Fact]
    public void ByteLevelTokensMapToTheirBytes()
    {
        foreach (var text in (string[])[" hello", "\n", "é", "{\""])
        {
            var ids = Tokenizer.Encode(text, false);
            var bytes = ids.SelectMany(id => Vocab.TokenBytes(id)!).ToArray();
            Assert.Equal(Encoding.UTF8.GetBytes(text), bytes);
        }
        Assert.Null(Vocab.TokenBytes(8193)); // <|im_start|>: special tokens are never allowed
        Assert.True(Vocab.IsEos(ImEnd));
        Assert.Equal(FortuneModelVocab, Vocab.Size);
        Assert.Equal((FortuneModelVocab + 31) / 32, Vocab.BitmaskWords);
    }

    [Fact]
    public void TokensThatLeaveARuleAreDecidedByTheStackBelow()
    {
        // Tokens spanning the end of an inner rule: '"}' closes a string and then the object (or not).
        string[] tokens = ["\"", "}", "\"}", "\",", "a", "a\"", "\"a", "1", "1}", ",\"", ":", "{\"", "]", "\"]"];
        var vocab = TokenVocabulary.FromBytes(tokens.Select(t => (byte[]?)Encoding.UTF8.GetBytes(t)).Append(null).ToList(), [tokens.Length]);
        var g = new GrammarCompiler(vocab).JsonSchema("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"array","items":{"type":"string"}}}}""");
        foreach (var prefix in (string[])["{\"a\":\"x", "{\"b\":[\"x", "{\"b\":[", "{", "{\"a\":\"\"", ""])
        {
            var m = new GrammarMatcher(g);
            Assert.True(m.AcceptString(prefix), prefix);
            var mask = Mask(m, vocab);
            for (int id = 0; id <= tokens.Length; id++)
                Assert.True(m.Fork().AcceptToken(id) == Allowed(mask, id), $"after '{prefix}', token {id}");
        }
    }

    [Fact]
    public void SentencePieceStyleTokens()
    {
        // A vocabulary read the SentencePiece way: '▁' is a space, <0xNN> one byte.
        var vocab = TokenVocabulary.FromBytes([Encoding.UTF8.GetBytes(" yes"), [0x0A], Encoding.UTF8.GetBytes("no"), null], [3]);
        var g = new GrammarCompiler(vocab).Choice([" yes\n", "no"]);
        var m = new GrammarMatcher(g);
        Assert.Equal([0, 2], AllowedIds(Mask(m, vocab), 4));
        Assert.True(m.AcceptToken(0));
        Assert.Equal([1], AllowedIds(Mask(m, vocab), 4));
        Assert.True(m.AcceptToken(1));
        Assert.Equal([3], AllowedIds(Mask(m, vocab), 4));
    }
}
