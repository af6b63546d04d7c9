using System.Text.Json.Nodes;
using Pagoda.Cli;
using Pagoda.Cli.Commands;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Cli;

/// <summary>`pagoda run-batch` with completions and chat bodies, and per-line errors.</summary>
public class RunBatchCommandTests
{
    [Fact]
    public void RunsAnOpenAiBatchFileInOrder()
    {
        var g = Golden.Load("fortune-chat", "completions", 0);
        var chat = Golden.Load("fortune-chat", "chats", 0);
        string input = Path.GetTempFileName(), output = Path.GetTempFileName();
        File.WriteAllLines(input,
        [
            new JsonObject { ["custom_id"] = "c1", ["method"] = "POST", ["url"] = "/v1/completions",
                ["body"] = new JsonObject { ["model"] = "m", ["prompt"] = g.Prompt, ["max_tokens"] = 48, ["temperature"] = 0, ["logprobs"] = 2 } }.ToJsonString(),
            new JsonObject { ["custom_id"] = "bad", ["method"] = "POST", ["url"] = "/v1/completions",
                ["body"] = new JsonObject { ["model"] = "m", ["prompt"] = "x", ["temperature"] = -1 } }.ToJsonString(),
            new JsonObject { ["custom_id"] = "c2", ["method"] = "POST", ["url"] = "/v1/chat/completions",
                ["body"] = new JsonObject { ["model"] = "m", ["messages"] = chat.Messages!.DeepClone(), ["max_completion_tokens"] = 48, ["temperature"] = 0 } }.ToJsonString(),
            new JsonObject { ["custom_id"] = "long", ["method"] = "POST", ["url"] = "/v1/completions",
                ["body"] = new JsonObject { ["model"] = "m", ["prompt"] = new JsonArray(Enumerable.Range(0, 3000).Select(_ => (JsonNode)5).ToArray()) } }.ToJsonString(),
        ]);
        var err = new StringWriter();
        int code = PagodaCli.Run(["run-batch", "-i", input, "-o", output, "--served-model-name", "fortune"], new StringWriter(), err);
        Assert.True(code == 0, err.ToString());
        var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["c1", "bad", "c2", "long"], lines.Select(l => l["custom_id"]!.GetValue<string>()));

        var c1 = lines[0]["response"]!;
        Assert.Equal(200, c1["status_code"]!.GetValue<int>());
        Assert.StartsWith("vllm-batch-", c1["request_id"]!.GetValue<string>());
        Assert.Null(lines[0]["error"]);
        var body = c1["body"]!;
        Assert.Equal("text_completion", body["object"]!.GetValue<string>());
        Assert.Equal("fortune", body["model"]!.GetValue<string>());
        Assert.StartsWith("cmpl-", body["id"]!.GetValue<string>());
        Assert.Equal(g.Text, body["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(g.OutputIds.Length, body["choices"]![0]!["logprobs"]!["tokens"]!.AsArray().Count);
        Assert.Equal(g.PromptIds.Length, body["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(g.OutputIds.Length, body["usage"]!["completion_tokens"]!.GetValue<int>());

        Assert.Equal(400, lines[1]["response"]!["status_code"]!.GetValue<int>());
        Assert.Equal("temperature must be non-negative, got -1.", lines[1]["error"]!["message"]!.GetValue<string>());

        var c2 = lines[2]["response"]!["body"]!;
        Assert.Equal("chat.completion", c2["object"]!.GetValue<string>());
        Assert.Equal(chat.Text, c2["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal("assistant", c2["choices"]![0]!["message"]!["role"]!.GetValue<string>());

        Assert.Equal(400, lines[3]["response"]!["status_code"]!.GetValue<int>());
        Assert.Contains("--max-model-len", lines[3]["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public void ProgressLineHasVllmsShape()
    {
        string line = ProgressBar.Format("Processed prompts", new GenerateProgress(370, 1000, 25356, 10140, TimeSpan.FromSeconds(12)));
        Assert.Equal("Processed prompts:  37%|███▋      | 370/1000 [00:12<00:20, 30.83it/s, est. speed input: 2113.00 toks/s, output: 845.00 toks/s]", line);
    }

    /// <summary>Structured outputs and max_tokens beyond the context per line, as the server treats them.</summary>
    [Fact]
    public void StructuredOutputsAndContextChecksPerLine()
    {
        string input = Path.GetTempFileName(), output = Path.GetTempFileName();
        JsonObject Line(string id, JsonObject body) => new() { ["custom_id"] = id, ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = body };
        JsonObject Chat() => new() { ["model"] = "m", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Flip a coin" }) };
        File.WriteAllLines(input,
        [
            Line("choice", Chat().Also(b => { b["guided_choice"] = new JsonArray("heads", "tails"); b["temperature"] = 1; b["n"] = 3; })).ToJsonString(),
            Line("schema", Chat().Also(b => b["response_format"] = JsonNode.Parse("""
                {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "object", "properties": {"side": {"enum": ["heads", "tails"]}}, "required": ["side"]}}}
                """))).ToJsonString(),
            Line("too long", Chat().Also(b => b["max_tokens"] = 100_000)).ToJsonString(),
        ]);
        var err = new StringWriter();
        Assert.Equal(0, PagodaCli.Run(["run-batch", "-i", input, "-o", output], new StringWriter(), err));
        var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToList();
        foreach (var choice in lines[0]["response"]!["body"]!["choices"]!.AsArray())
            Assert.Matches("^(heads|tails)$", choice!["message"]!["content"]!.GetValue<string>());
        string json = lines[1]["response"]!["body"]!["choices"]![0]!["message"]!["content"]!.GetValue<string>();
        Assert.Matches("^(heads|tails)$", JsonNode.Parse(json)!["side"]!.GetValue<string>());
        Assert.Equal(400, lines[2]["response"]!["status_code"]!.GetValue<int>());
        Assert.StartsWith("This model's maximum context length is", lines[2]["error"]!["message"]!.GetValue<string>());
    }
}

internal static class JsonObjectExtensions
{
    public static JsonObject Also(this JsonObject o, Action<JsonObject> change)
    {
        change(o);
        return o;
    }
}
