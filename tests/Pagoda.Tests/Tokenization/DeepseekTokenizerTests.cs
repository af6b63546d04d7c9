using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

public sealed class DeepseekTokenizerFixture
{
    public Tokenizer Tokenizer { get; } = Tokenizer.FromFolder(NpmTokenizers.Folder("deepseek_v3"));
}

/// <summary>
/// DeepSeek-V3 (a Sequence of three Split pre-tokenizers). The golden "deepseek_v3" entries are not
/// used: they were made by a transformers build that re-creates this tokenizer as a SentencePiece-style
/// LlamaTokenizer (spaces and CJK vanish, "Hello world" becomes H/ellow/orld), not by the tokenizer.json
/// pipeline. These tests check the tokenizer.json semantics instead.
/// </summary>
public sealed class DeepseekTokenizerTests(DeepseekTokenizerFixture f) : IClassFixture<DeepseekTokenizerFixture>
{
    private readonly Tokenizer _tok = f.Tokenizer;

    public static TheoryData<int> Cases => GoldenTokenizers.Cases("deepseek_v3");

    [Theory, MemberData(nameof(Cases))]
    public void Decode_inverts_encode(int index)
    {
        string text = GoldenTokenizers.Encodes("deepseek_v3")[index].Text;
        Assert.Equal(text, _tok.Decode(_tok.Encode(text, addSpecialTokens: false)));
    }

    [Fact]
    public void Words_split_as_the_pre_tokenizer_regexes_say()
    {
        Assert.Equal(new[] { "Hello", "Ġworld" }, Tokens("Hello world"));
        // \p{N}{1,3} isolates digits in threes before the word regex runs.
        Assert.Equal(new[] { "123", "456", "7" }, Tokens("1234567"));
    }

    [Fact]
    public void Add_bos_token_from_the_config_prepends_bos()
    {
        Assert.Equal("<｜begin▁of▁sentence｜>", _tok.BosToken);
        Assert.Equal(0, _tok.BosTokenId);
        var ids = _tok.Encode("Hello world");
        Assert.Equal([0, .. _tok.Encode("Hello world", addSpecialTokens: false)], ids);
        Assert.Equal("Hello world", _tok.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Normalized_added_tokens_are_found_in_text()
    {
        var ids = _tok.Encode("<｜User｜>hi<｜Assistant｜>", addSpecialTokens: false);
        Assert.Equal(128803, ids[0]);
        Assert.Equal(128804, ids[^1]);
    }

    private string[] Tokens(string text) =>
        _tok.Encode(text, addSpecialTokens: false).Select(id => _tok.IdToToken(id) ?? "?").ToArray();
}
