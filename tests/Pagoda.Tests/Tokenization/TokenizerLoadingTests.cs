using Pagoda.Loading;
using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

public sealed class TokenizerLoadingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pagoda-tok-" + Guid.NewGuid().ToString("N"));

    public TokenizerLoadingTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Vocab = """{"a": 0, "b": 1, "ab": 2}""";

    private string Write(string tokenizerJson, string? config = null)
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), tokenizerJson);
        if (config is not null) File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), config);
        return _dir;
    }

    private static string Json(string model = $$"""{"type": "BPE", "vocab": {{Vocab}}, "merges": ["a b"]}""",
        string normalizer = "null", string preTokenizer = "null", string decoder = "null", string post = "null") =>
        $$"""{"added_tokens": [], "normalizer": {{normalizer}}, "pre_tokenizer": {{preTokenizer}}, "post_processor": {{post}}, "decoder": {{decoder}}, "model": {{model}}}""";

    [Fact]
    public void Minimal_bpe_encodes_with_merges()
    {
        var tok = Tokenizer.FromFolder(Write(Json()));
        Assert.Equal([2, 0], tok.Encode("aba"));
        Assert.Equal(3, tok.VocabSize);
        Assert.Equal("ab a", tok.Decode([2, 0])); // no decoder: tokens joined by spaces, as HF does
    }

    [Fact]
    public void Missing_tokenizer_json_names_the_file()
    {
        var e = Assert.Throws<ModelLoadException>(() => Tokenizer.FromFolder(_dir));
        Assert.EndsWith("tokenizer.json", e.Path);
    }

    [Fact]
    public void Malformed_json_names_the_file()
    {
        var e = Assert.Throws<ModelLoadException>(() => Tokenizer.FromFolder(Write("{\"model\": {")));
        Assert.EndsWith("tokenizer.json", e.Path);
        Assert.Contains("malformed JSON", e.Problem);
    }

    [Fact]
    public void Malformed_config_names_the_config_file()
    {
        var e = Assert.Throws<ModelLoadException>(() => Tokenizer.FromFolder(Write(Json(), "{oops")));
        Assert.EndsWith("tokenizer_config.json", e.Path);
    }

    [Fact]
    public void Unsupported_model_type_is_refused()
    {
        var e = Assert.Throws<ModelLoadException>(() =>
            Tokenizer.FromFolder(Write(Json(model: """{"type": "WordPiece", "vocab": {}}"""))));
        Assert.Contains("unsupported model type 'WordPiece' (supported: BPE)", e.Problem);
    }

    [Theory]
    [InlineData("normalizer", "NFKC")]
    [InlineData("pre-tokenizer", "BertPreTokenizer")]
    [InlineData("decoder", "WordPiece")]
    [InlineData("post-processor", "Whatever")]
    public void Unsupported_component_types_are_refused(string component, string type)
    {
        string c = $$"""{"type": "{{type}}"}""";
        string json = component switch
        {
            "normalizer" => Json(normalizer: c),
            "pre-tokenizer" => Json(preTokenizer: c),
            "decoder" => Json(decoder: c),
            _ => Json(post: c),
        };
        var e = Assert.Throws<ModelLoadException>(() => Tokenizer.FromFolder(Write(json)));
        Assert.Contains($"unsupported {component} type '{type}'", e.Problem);
    }

    [Fact]
    public void Merge_with_unknown_token_is_refused()
    {
        var e = Assert.Throws<ModelLoadException>(() => Tokenizer.FromFolder(Write(
            Json(model: $$"""{"type": "BPE", "vocab": {{Vocab}}, "merges": ["a c"]}"""))));
        Assert.Contains("missing from the vocab", e.Problem);
    }

    [Fact]
    public void Config_tokens_may_be_objects_and_add_bos_eos()
    {
        string json = """
            {"added_tokens": [{"id": 3, "content": "<s>", "special": true, "normalized": false},
                              {"id": 4, "content": "</s>", "special": true, "normalized": false}],
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}
            """;
        string config = """{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_bos_token": true, "add_eos_token": true}""";
        var tok = Tokenizer.FromFolder(Write(json, config));
        Assert.Equal(3, tok.BosTokenId);
        Assert.Equal(4, tok.EosTokenId);
        Assert.Equal([3, 2, 4], tok.Encode("ab"));
        Assert.Equal([2], tok.Encode("ab", addSpecialTokens: false));
    }

    [Fact]
    public void Large_tokenizer_loads_quickly()
    {
        string folder = NpmTokenizers.Folder("qwen3");
        Tokenizer.FromFolder(folder); // warm up JIT
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var tok = Tokenizer.FromFolder(folder);
        watch.Stop();
        Assert.Equal(151669, tok.VocabSize);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(3), $"loading took {watch.Elapsed}");
    }
}
