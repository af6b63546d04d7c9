using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

public sealed class Llama2TokenizerFixture
{
    public Tokenizer Tokenizer { get; } = SharedTokenizers.Get("llama2");
}

/// <summary>
/// Llama 2 (tokenizer_class LlamaTokenizer): transformers v5 rebuilds it as Metaspace + byte-fallback BPE,
/// so a leading space merges into the prefix ▁ and spaces after the first are kept.
/// </summary>
public sealed class Llama2GoldenTests(Llama2TokenizerFixture f)
    : GoldenTokenizerTests(f.Tokenizer, "llama2"), IClassFixture<Llama2TokenizerFixture>
{
    public static TheoryData<int> Cases => GoldenTokenizers.Cases("llama2");

    [Theory, MemberData(nameof(Cases))]
    public void Encode_matches_golden(int index) => CheckEncode(index);

    [Theory, MemberData(nameof(Cases))]
    public void Decode_matches_golden(int index) => CheckDecode(index);

    [Fact]
    public void Characters_outside_the_vocab_fall_back_to_bytes()
    {
        var ids = Tokenizer.Encode("👋", addSpecialTokens: false);
        Assert.Equal(["▁", "<0xF0>", "<0x9F>", "<0x91>", "<0x8B>"], ids.Select(i => Tokenizer.IdToToken(i)));
        Assert.Equal("👋", Tokenizer.Decode(ids));
    }

    [Fact]
    public void Bos_comes_from_the_template_post_processor()
    {
        Assert.Equal(1, Tokenizer.BosTokenId);
        Assert.Equal([1, .. Tokenizer.Encode("hi", addSpecialTokens: false)], Tokenizer.Encode("hi"));
        // The Strip decoder removes one space from the start of the whole text, not after "<s>".
        Assert.Equal("<s> hi", Tokenizer.Decode(Tokenizer.Encode("hi")));
    }
}
