using System.Text.Json.Nodes;
using Pagoda.Cli;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Cli;

/// <summary>`pagoda generate` in-process: text and JSON output, prompt files, flags and clear errors.</summary>
public class GenerateCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = PagodaCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string TempFile(string content)
    {
        string path = Path.GetTempFileName();
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void TextOutputMirrorsVllmBasicExample()
    {
        var (code, output, err) = Run("generate", "--prompt", "Hello, my name is", "--temperature", "0", "--max-tokens", "48");
        Assert.True(code == 0, err);
        var g = Golden.Load("fortune-chat", "completions", 0);
        string rule = new('-', 60);
        string expected = $"\nGenerated Outputs:\n{rule}\nPrompt:    'Hello, my name is'\nOutput:    \"{g.Text!.Replace("\n", "\\n")}\"\n{rule}\n";
        Assert.Equal(expected, output.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void JsonLinesFromAPromptsFile()
    {
        var chat = Golden.Load("fortune-chat", "chats", 0);
        string file = TempFile(
            "{\"prompt\": \"Hello, my name is\"}\n\n" +
            "{\"prompt_token_ids\": [7397, 11, 478, 1338, 302]}\n" +
            new JsonObject { ["messages"] = chat.Messages!.DeepClone() }.ToJsonString() + "\n");
        var (code, output, err) = Run("generate", "--model", TestPaths.Model("fortune-chat"), "--prompts-file", file,
            "--temperature", "0", "--max-tokens", "48", "--logprobs", "2", "--prompt-logprobs", "1", "--json");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(3, lines.Count);

        var g = Golden.Load("fortune-chat", "completions", 0);
        Assert.Equal("Hello, my name is", lines[0]["prompt"]!.GetValue<string>());
        Assert.Null(lines[1]["prompt"]);
        Assert.Equal(chat.Rendered, lines[2]["prompt"]!.GetValue<string>());
        foreach (var line in lines.Take(2))
        {
            Assert.Equal(g.PromptIds, line["prompt_token_ids"]!.AsArray().Select(n => n!.GetValue<int>()));
            var o = line["outputs"]![0]!;
            Assert.Equal(0, o["index"]!.GetValue<int>());
            Assert.Equal(g.Text, o["text"]!.GetValue<string>());
            Assert.Equal(g.OutputIds, o["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()));
            Assert.Equal("stop", o["finish_reason"]!.GetValue<string>());
            Assert.Null(o["stop_reason"]);
            var steps = o["logprobs"]!.AsArray();
            Assert.Equal(g.OutputIds.Length, steps.Count);
            Assert.Equal(g.Steps[0].Token, steps[0]!["token_id"]!.GetValue<int>());
            Assert.Equal(2, steps[0]!["top"]!.AsArray().Count);
            Assert.Equal(steps.Sum(s => s!["logprob"]!.GetValue<double>()), o["cumulative_logprob"]!.GetValue<double>(), 1e-9);
            var plp = line["prompt_logprobs"]!.AsArray();
            Assert.Null(plp[0]);
            Assert.Equal(g.PromptLogprobs[1]!.Value, plp[1]!["logprob"]!.GetValue<double>(), 1e-4);
        }
        Assert.Equal(chat.OutputIds, lines[2]["outputs"]![0]!["token_ids"]!.AsArray().Select(n => n!.GetValue<int>()));
    }

    [Fact]
    public void WithoutLogprobsTheFieldsAreNull()
    {
        var (code, output, err) = Run("generate", "--prompt", "Hi", "--max-tokens", "2", "--json", "--seed", "3");
        Assert.True(code == 0, err);
        var line = JsonNode.Parse(output)!;
        Assert.Null(line["prompt_logprobs"]);
        Assert.Null(line["outputs"]![0]!["logprobs"]);
        Assert.Null(line["outputs"]![0]!["cumulative_logprob"]);
    }

    [Theory]
    [InlineData("{\"prompt\": 5}", "\"prompt\" must be a string")]
    [InlineData("not json", "not valid JSON")]
    [InlineData("{\"prompt_token_ids\": [1, -2]}", "non-negative integers")]
    [InlineData("{\"messages\": [{\"content\": \"x\"}]}", "string \"role\"")]
    [InlineData("{\"prompt\": \"a\", \"messages\": []}", "exactly one of")]
    public void MalformedPromptLinesAreReportedWithTheirLineNumber(string badLine, string problem)
    {
        string file = TempFile("{\"prompt\": \"ok\"}\n" + badLine + "\n");
        var (code, _, err) = Run("generate", "--prompts-file", file);
        Assert.Equal(1, code);
        Assert.Contains($"{file}:2: ", err);
        Assert.Contains(problem, err);
    }

    [Fact]
    public void BadModelFolderIsOneLineNotAStackTrace()
    {
        var (code, _, err) = Run("generate", "--model", "/no/such/model", "--prompt", "x");
        Assert.Equal(1, code);
        Assert.Equal("error: /no/such/model: model folder not found (and not a repo id such as Qwen/Qwen2.5-1.5B-Instruct)", err.Trim());
    }

    [Fact]
    public void InvalidSamplingFlagIsReported()
    {
        var (code, _, err) = Run("generate", "--prompt", "x", "--top-p", "0");
        Assert.Equal(1, code);
        Assert.Contains("top_p must be in (0, 1]", err);
    }

    /// <summary>
    /// vLLM flags that deployment charts pass are accepted where they ask for what Pagoda does anyway; a tensor-parallel
    /// size the model's heads do not divide, and a later node's rank given to an engine, are clear errors.
    /// </summary>
    [Fact]
    public void ChartFlagsAreAcceptedOrRefusedClearly()
    {
        var (code, output, err) = Run("generate", "--prompt", "Hello, my name is", "--temperature", "0", "--max-tokens", "4",
            "--tensor-parallel-size", "1", "--enable-chunked-prefill", "--trust-remote-code");
        Assert.True(code == 0, err);
        Assert.Contains("Generated Outputs:", output);
        (code, _, err) = Run("generate", "--prompt", "x", "-tp", "3", "--nnodes", "1", "--master-port", "29500");
        Assert.NotEqual(0, code);
        Assert.Contains("num_attention_heads (4) is not divisible by --tensor-parallel-size 3", err);
        (code, _, err) = Run("generate", "--prompt", "x", "-tp", "2", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1");
        Assert.NotEqual(0, code);
        Assert.Contains("node 1 of a multi-node group runs only workers: start it with `pagoda serve MODEL --headless`.", err);
    }
}
