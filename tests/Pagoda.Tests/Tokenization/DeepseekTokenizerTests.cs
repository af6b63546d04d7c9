using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

public sealed class DeepseekTokenizerFixture
{
    public Tokenizer Tokenizer { get; } = SharedTokenizers.Get("deepseek_v3");
}

/// <summary>
/// DeepSeek-V3's tokenizer_config.json names LlamaTokenizerFast, so transformers v5 (which made the golden
/// entries) replaces the byte-level pipeline of its tokenizer.json by Metaspace + byte fallback over the
/// byte-level vocab: ▁ and characters such as CJK have no token and no &lt;0xXX&gt; fallback, so they are
/// dropped and the neighbours merge ("Hello world" becomes H / ellow / orld).
/// </summary>
public sealed class DeepseekGoldenTests(DeepseekTokenizerFixture f)
    : GoldenTokenizerTests(f.Tokenizer, "deepseek_v3"), IClassFixture<DeepseekTokenizerFixture>
{
    public static TheoryData<int> Cases => GoldenTokenizers.Cases("deepseek_v3");

    [Theory, MemberData(nameof(Cases))]
    public void Encode_matches_golden(int index) => CheckEncode(index);

    [Theory, MemberData(nameof(Cases))]
    public void Decode_matches_golden(int index) => CheckDecode(index);

    [Fact]
    public void Add_bos_token_yields_to_the_tokenizer_json_post_processor()
    {
        Assert.Equal("<｜begin▁of▁sentence｜>", Tokenizer.BosToken);
        Assert.Equal(0, Tokenizer.BosTokenId);
        Assert.Equal(Tokenizer.Encode("Hello world", addSpecialTokens: false), Tokenizer.Encode("Hello world"));
    }

    [Fact]
    public void Added_tokens_are_still_found_in_text()
    {
        var ids = Tokenizer.Encode("<｜User｜>hi<｜Assistant｜>", addSpecialTokens: false);
        Assert.Equal(128803, ids[0]);
        Assert.Equal(128804, ids[^1]);
    }
}
