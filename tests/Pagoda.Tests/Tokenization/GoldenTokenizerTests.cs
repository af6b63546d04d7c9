using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

/// <summary>Shared checks of one golden family against a loaded tokenizer.</summary>
public abstract class GoldenTokenizerTests(Tokenizer tokenizer, string family)
{
    protected Tokenizer Tokenizer { get; } = tokenizer;

    protected void CheckEncode(int index)
    {
        var g = GoldenTokenizers.Encodes(family)[index];
        Assert.Equal(g.Ids, Tokenizer.Encode(g.Text, addSpecialTokens: false));
        Assert.Equal(g.IdsWithSpecial, Tokenizer.Encode(g.Text, addSpecialTokens: true));
    }

    // "decode" is of the plain ids: llama2's "" has ids_with_special [1] and decode "", which "<s>" would break.
    protected void CheckDecode(int index)
    {
        var g = GoldenTokenizers.Encodes(family)[index];
        Assert.Equal(g.Decode, Tokenizer.Decode(g.Ids));
        Assert.Equal(g.DecodeSkipSpecial, Tokenizer.Decode(g.Ids, skipSpecialTokens: true));
        Assert.Equal(g.DecodeSkipSpecial, Tokenizer.Decode(g.IdsWithSpecial, skipSpecialTokens: true));
    }
}

public sealed class FortuneTokenizerFixture
{
    public Tokenizer Tokenizer { get; } = Tokenizer.FromFolder(TestPaths.Model("fortune-chat"));
}

public sealed class FortuneGoldenTests(FortuneTokenizerFixture f)
    : GoldenTokenizerTests(f.Tokenizer, "fortune"), IClassFixture<FortuneTokenizerFixture>
{
    public static TheoryData<int> Cases => GoldenTokenizers.Cases("fortune");

    [Theory, MemberData(nameof(Cases))]
    public void Encode_matches_golden(int index) => CheckEncode(index);

    [Theory, MemberData(nameof(Cases))]
    public void Decode_matches_golden(int index) => CheckDecode(index);

    [Fact]
    public void Special_tokens_come_from_the_config()
    {
        Assert.Equal(8195, Tokenizer.VocabSize);
        Assert.Null(Tokenizer.BosToken);
        Assert.Equal("<|im_end|>", Tokenizer.EosToken);
        Assert.Equal(8194, Tokenizer.EosTokenId);
        Assert.Equal("<|endoftext|>", Tokenizer.PadToken);
        Assert.Equal(8192, Tokenizer.PadTokenId);
        Assert.True(Tokenizer.IsSpecial(8193));
        Assert.False(Tokenizer.IsSpecial(7397));
        Assert.Equal("<|im_start|>", Tokenizer.IdToToken(8193));
        Assert.Equal(8193, Tokenizer.TokenToId("<|im_start|>"));
        Assert.Null(Tokenizer.TokenToId("no such token"));
        Assert.Null(Tokenizer.IdToToken(99999));
    }
}

public sealed class Qwen3TokenizerFixture
{
    public Tokenizer Tokenizer { get; } = SharedTokenizers.Get("qwen3");
}

public sealed class Qwen3GoldenTests(Qwen3TokenizerFixture f)
    : GoldenTokenizerTests(f.Tokenizer, "qwen3"), IClassFixture<Qwen3TokenizerFixture>
{
    public static TheoryData<int> Cases => GoldenTokenizers.Cases("qwen3");

    [Theory, MemberData(nameof(Cases))]
    public void Encode_matches_golden(int index) => CheckEncode(index);

    [Theory, MemberData(nameof(Cases))]
    public void Decode_matches_golden(int index) => CheckDecode(index);

    [Fact]
    public void Non_special_added_tokens_are_matched_but_kept_when_skipping_specials()
    {
        var ids = Tokenizer.Encode("<think>x</think>", addSpecialTokens: false);
        Assert.Equal(Tokenizer.TokenToId("<think>"), ids[0]);
        Assert.Equal(Tokenizer.TokenToId("</think>"), ids[^1]);
        Assert.False(Tokenizer.IsSpecial(ids[0]));
        Assert.Equal("<think>x</think>", Tokenizer.Decode(ids, skipSpecialTokens: true));
    }
}

public sealed class Llama3TokenizerFixture
{
    public Tokenizer Tokenizer { get; } = SharedTokenizers.Get("llama3");
}

public sealed class Llama3GoldenTests(Llama3TokenizerFixture f)
    : GoldenTokenizerTests(f.Tokenizer, "llama3"), IClassFixture<Llama3TokenizerFixture>
{
    public static TheoryData<int> Cases => GoldenTokenizers.Cases("llama3");

    [Theory, MemberData(nameof(Cases))]
    public void Encode_matches_golden(int index) => CheckEncode(index);

    [Theory, MemberData(nameof(Cases))]
    public void Decode_matches_golden(int index) => CheckDecode(index);
}
