using System.Text.Json.Nodes;
using Pagoda.Cli;
using Pagoda.Tests.Support;
using Pagoda.Tests.Tokenization;

namespace Pagoda.Tests.Cli;

/// <summary>`pagoda tokenize` / `pagoda detokenize` against the golden tokenizer outputs.</summary>
public sealed class TokenizeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pagoda-tokcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = PagodaCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private string Write(string name, JsonNode content)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, content.ToJsonString());
        return path;
    }

    private static int[] Ints(JsonNode? array) => array!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    // Each run loads the tokenizer from disk, so one small family and one case keep this quick.
    [Fact]
    public void Text_gives_golden_ids_and_tokens()
    {
        const string family = "llama2";
        var g = GoldenTokenizers.Encodes(family)[2];
        string dir = NpmTokenizers.Folder(family); // holds only tokenizer.json and tokenizer_config.json
        var (code, output, err) = Run("tokenize", "--tokenizer", dir, "--text", g.Text);
        Assert.True(code == 0, err);
        var json = JsonNode.Parse(output)!;
        Assert.Equal(g.Text, json["prompt"]!.GetValue<string>());
        Assert.Equal(g.Ids, Ints(json["ids"]));
        var tok = SharedTokenizers.Get(family);
        Assert.Equal(g.Ids.Select(i => tok.IdToToken(i)), json["tokens"]!.AsArray().Select(n => n!.GetValue<string>()));

        (code, output, err) = Run("tokenize", "--tokenizer", dir, "--text", g.Text, "--add-special-tokens");
        Assert.True(code == 0, err);
        Assert.Equal(g.IdsWithSpecial, Ints(JsonNode.Parse(output)!["ids"]));
    }

    // vLLM's command line (`vllm serve ...`, as container images and charts write it) runs the same command.
    [Fact]
    public void A_leading_vllm_runs_the_same_command()
    {
        var plain = Run("tokenize", "--text", "Hello world");
        var vllm = Run("vllm", "tokenize", "--text", "Hello world");
        Assert.True(plain.Code == 0, plain.Err);
        Assert.Equal(plain, vllm);
    }

    [Fact]
    public void Messages_with_tools_and_kwargs_render_like_the_golden_chat()
    {
        var golden = JsonNode.Parse(File.ReadAllText(TestPaths.Golden("tokenizers.json")))!["qwen3"]!["chat"]!.AsArray();
        var entry = golden.First(c => c!["tools"] is JsonArray)!;
        var args = new List<string>
        {
            "tokenize", "--tokenizer", NpmTokenizers.Folder("qwen3"),
            "--messages", Write("messages.json", entry["messages"]!.DeepClone()),
            "--tools", Write("tools.json", entry["tools"]!.DeepClone()),
            "--chat-template-kwargs", entry["kwargs"]!.ToJsonString(),
        };
        if (entry["add_generation_prompt"]!.GetValue<bool>()) args.Add("--add-generation-prompt");
        var (code, output, err) = Run([.. args]);
        Assert.True(code == 0, err);
        var json = JsonNode.Parse(output)!;
        string rendered = entry["rendered"]!.GetValue<string>();
        Assert.Equal(rendered, json["prompt"]!.GetValue<string>());
        Assert.Equal(SharedTokenizers.Get("qwen3").Encode(rendered, addSpecialTokens: false), Ints(json["ids"]));
    }

    [Fact]
    public void Detokenize_prints_the_text_with_or_without_special_tokens()
    {
        var g = GoldenTokenizers.Encodes("fortune").First(e => e.Text.Contains("<|im_start|>"));
        string ids = string.Join(",", g.Ids);
        var (code, output, err) = Run("detokenize", "--ids", ids);
        Assert.True(code == 0, err);
        Assert.Equal(g.Decode + "\n", output.ReplaceLineEndings("\n"));
        (code, output, _) = Run("detokenize", "--tokenizer", TestPaths.Model("fortune-chat"), "--ids", ids, "--skip-special-tokens");
        Assert.Equal(0, code);
        Assert.Equal(g.DecodeSkipSpecial + "\n", output.ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("tokenize", "--text", "a", "--messages", "m.json")]
    [InlineData("tokenize")]
    [InlineData("tokenize", "--text", "a", "--tools", "t.json")]
    [InlineData("tokenize", "--messages", "no-such-file.json")]
    [InlineData("detokenize", "--ids", "1,x")]
    [InlineData("detokenize", "--ids", "99999999")]
    [InlineData("tokenize", "--tokenizer", "/no/such/dir", "--text", "a")]
    public void Mistakes_are_one_line_errors(params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
        Assert.Single(err.Trim().Split('\n'));
    }
}
