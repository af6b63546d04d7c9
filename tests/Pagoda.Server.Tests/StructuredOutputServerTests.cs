using System.Text.Json.Nodes;
using OpenAI.Chat;

namespace Pagoda.Server.Tests;

/// <summary>
/// Structured outputs through the server: OpenAI's response_format json_schema and json_object from the official
/// .NET SDK, vLLM's structured_outputs and guided_* fields on chat and completions, and a bad schema as a 400.
/// </summary>
[Collection(ServerCollection.Name)]
public class StructuredOutputServerTests(ServerFixture f)
{
    private ChatClient Client => f.SdkChatClient();

    [Fact]
    public async Task JsonSchemaResponseFormatFromTheSdk()
    {
        var options = new ChatCompletionOptions
        {
            Temperature = 0.8f, Seed = 11, MaxOutputTokenCount = 80,
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("rating", BinaryData.FromString("""
                {"type": "object", "properties": {"mood": {"type": "string", "enum": ["happy", "sad"]}, "score": {"type": "integer", "minimum": 0, "maximum": 9}},
                 "required": ["mood", "score"], "additionalProperties": false}
                """), jsonSchemaIsStrict: true),
        };
        int valid = 0;
        for (int i = 0; i < 4; i++)
        {
            options.Seed = 11 + i;
            ChatCompletion c = await Client.CompleteChatAsync([new UserChatMessage("How do you feel? Answer in JSON.")], options);
            if (c.FinishReason != ChatFinishReason.Stop)
                continue;
            var o = JsonNode.Parse(c.Content[0].Text)!.AsObject();
            Assert.Equal(["mood", "score"], o.Select(p => p.Key));
            Assert.Contains(o["mood"]!.GetValue<string>(), new[] { "happy", "sad" });
            Assert.InRange(o["score"]!.GetValue<int>(), 0, 9);
            valid++;
        }
        Assert.True(valid >= 2, $"only {valid} of 4 outputs finished");
    }

    [Fact]
    public async Task JsonObjectResponseFormatFromTheSdk()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 60, ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() };
        ChatCompletion c = await Client.CompleteChatAsync([new UserChatMessage("Give me a JSON object.")], options);
        Assert.StartsWith("{", c.Content[0].Text);
        if (c.FinishReason == ChatFinishReason.Stop)
            Assert.IsType<JsonObject>(JsonNode.Parse(c.Content[0].Text));
    }

    [Theory]
    [InlineData("/v1/chat/completions", "guided_choice", "[\"heads\", \"tails\"]")]
    [InlineData("/v1/chat/completions", "structured_outputs", "{\"choice\": [\"heads\", \"tails\"]}")]
    [InlineData("/v1/completions", "guided_choice", "[\"heads\", \"tails\"]")]
    [InlineData("/v1/completions", "structured_outputs", "{\"regex\": \"(heads|tails)\"}")]
    public async Task VllmFieldsConstrainTheOutput(string path, string field, string value)
    {
        var body = path.EndsWith("chat/completions")
            ? JsonNode.Parse("""{"messages": [{"role": "user", "content": "Flip a coin"}], "max_tokens": 10, "temperature": 1, "n": 3}""")!.AsObject()
            : JsonNode.Parse("""{"prompt": "Flip a coin:", "max_tokens": 10, "temperature": 1, "n": 3}""")!.AsObject();
        body[field] = JsonNode.Parse(value);
        var (status, answer) = await f.PostJson(path, body);
        Assert.True(status == 200, answer?.ToJsonString());
        foreach (var choice in answer!["choices"]!.AsArray())
        {
            string text = (choice!["message"]?["content"] ?? choice["text"])!.GetValue<string>();
            Assert.Matches("^(heads|tails)$", text);
        }
    }

    [Theory]
    [InlineData("""{"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "not": {}}}}}""", null)]
    [InlineData("""{"guided_regex": "(a"}""", null)]
    [InlineData("""{"guided_choice": []}""", "guided_choice")]
    [InlineData("""{"guided_choice": ["a"], "guided_regex": "a"}""", "guided_choice")]
    [InlineData("""{"structured_outputs": {"structural_tag": "x"}}""", "structured_outputs")]
    public async Task BadStructuredOutputsAre400(string extra, string? param)
    {
        var body = JsonNode.Parse("""{"messages": [{"role": "user", "content": "x"}], "max_tokens": 4}""")!.AsObject();
        foreach (var (k, v) in JsonNode.Parse(extra)!.AsObject())
            body[k] = v?.DeepClone();
        var (status, answer) = await f.PostJson("/v1/chat/completions", body);
        Assert.True(status == 400, answer?.ToJsonString());
        if (param != null)
            Assert.Equal(param, answer!["error"]!["param"]!.GetValue<string>());
    }

    /// <summary>Hostile grammars are a 400 in bounded time, and the server goes on serving.</summary>
    [Fact]
    public async Task HostileSchemasAre400sInBoundedTime()
    {
        string deep = string.Concat(Enumerable.Repeat("{\"type\": \"array\", \"items\": ", 5000)) + "{}" + new string('}', 5000);
        string hugeEnum = "{\"enum\": [" + string.Join(", ", Enumerable.Range(0, 100_000).Select(i => $"\"value-{i}\"")) + "]}";
        foreach (var (field, value) in new[]
                 {
                     ("guided_json", deep), ("guided_json", hugeEnum), ("guided_regex", "\"(a{1,1000}){1,1000}\""),
                     ("guided_regex", "\"" + string.Concat(Enumerable.Repeat("(", 10_000)) + "a" + string.Concat(Enumerable.Repeat(")", 10_000)) + "\""),
                 })
        {
            var body = JsonNode.Parse("""{"messages": [{"role": "user", "content": "x"}], "max_tokens": 4}""")!.AsObject();
            // The deep schema travels as JSON text (vLLM takes a schema as an object or a string): parsed as an object
            // it would already be refused by the body's depth limit.
            body[field] = value == deep ? JsonValue.Create(deep) : JsonNode.Parse(value);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (status, answer) = await f.PostJson("/v1/chat/completions", body);
            Assert.True(status == 400, $"{field} ({value.Length} chars): {status} {answer?.ToJsonString()[..Math.Min(300, answer!.ToJsonString().Length)]}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{field}: {clock.Elapsed}");
        }
        var (ok, _) = await f.PostJson("/v1/chat/completions", JsonNode.Parse("""{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2}""")!);
        Assert.Equal(200, ok);
    }
}
