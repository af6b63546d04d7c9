using System.Text.Json.Nodes;
using OpenAI.Chat;

namespace Pagoda.Server.Tests;

/// <summary>
/// Nothing a request asks for is silently ignored: fields Pagoda does not implement are 400s naming them, max_tokens
/// beyond the context is vLLM's 400, tool turns as the SDKs send them render, defaults are OpenAI's.
/// </summary>
[Collection(ServerCollection.Name)]
public class RequestFieldTests(ServerFixture f)
{
    private static JsonObject Chat(string extra = "") =>
        JsonNode.Parse($$"""{"messages": [{"role": "user", "content": "Tell me a joke"}], "max_tokens": 4{{extra}}}""")!.AsObject();

    private async Task<JsonNode> Error(string path, JsonObject body)
    {
        var (status, answer) = await f.PostJson(path, body);
        Assert.True(status == 400, $"{body.ToJsonString()}: {status} {answer?.ToJsonString()}");
        return answer!["error"]!;
    }

    [Theory]
    [InlineData("/v1/chat/completions", "use_beam_search", "true")]
    [InlineData("/v1/chat/completions", "structural_tag", "\"x\"")]
    [InlineData("/v1/chat/completions", "cache_salt", "\"tenant-1\"")]
    [InlineData("/v1/chat/completions", "priority", "3")]
    [InlineData("/v1/chat/completions", "echo", "true")]
    [InlineData("/v1/completions", "guided_whitespace_pattern", "\" \"")]
    [InlineData("/v1/completions", "length_penalty", "0.5")]
    [InlineData("/v1/completions", "response_format", "{\"type\": \"structural_tag\"}")]
    public async Task UnimplementedVllmFieldsAre400NamingThem(string path, string field, string value)
    {
        var body = path.EndsWith("chat/completions") ? Chat() : JsonNode.Parse("""{"prompt": "x", "max_tokens": 2}""")!.AsObject();
        body[field] = JsonNode.Parse(value);
        var e = await Error(path, body);
        Assert.Equal(field, e["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task NoOpValuesOfUnimplementedFieldsAndUnknownFieldsAreAccepted()
    {
        var (status, body) = await f.PostJson("/v1/chat/completions",
            Chat(""", "use_beam_search": false, "priority": 0, "length_penalty": 1, "metadata": {"k": "v"}, "store": false"""));
        Assert.True(status == 200, body?.ToJsonString());
        Assert.Contains("The following fields were present in the request but ignored: {'metadata', 'store'}", f.LogText());
    }

    [Theory]
    [InlineData("/v1/chat/completions", "max_tokens")]
    [InlineData("/v1/chat/completions", "max_completion_tokens")]
    [InlineData("/v1/completions", "max_tokens")]
    public async Task MaxTokensBeyondTheContextIsVllms400(string path, string field)
    {
        var body = path.EndsWith("chat/completions")
            ? JsonNode.Parse("""{"messages": [{"role": "user", "content": "Tell me a joke"}]}""")!.AsObject()
            : JsonNode.Parse("""{"prompt": "Tell me a joke"}""")!.AsObject();
        body[field] = 100_000;
        var e = await Error(path, body);
        string message = e["message"]!.GetValue<string>();
        Assert.StartsWith($"This model's maximum context length is {f.Engine.Engine.MaxModelLen} tokens. However, you requested ", message);
        Assert.Contains("in the completion). Please reduce the length of the messages or completion.", message);
    }

    [Fact]
    public async Task CompletionsWithoutMaxTokensGenerateSixteen()
    {
        var (status, body) = await f.PostJson("/v1/completions", JsonNode.Parse("""{"prompt": "Hello", "ignore_eos": true}""")!);
        Assert.Equal(200, status);
        Assert.Equal(16, body!["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("""{"type": "function", "function": {"name": "get_time"}}""", "has not been passed")]
    [InlineData("\"sometimes\"", "'tool_choice' must be")]
    public async Task ToolChoiceIsCheckedAgainstTheTools(string choice, string expected)
    {
        var body = Chat();
        body["tools"] = JsonNode.Parse("""[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]""");
        body["tool_choice"] = JsonNode.Parse(choice);
        var e = await Error("/v1/chat/completions", body);
        Assert.Contains(expected, e["message"]!.GetValue<string>());
        Assert.Equal("tool_choice", e["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task AutoToolChoiceWithoutAParserIsVllms400()
    {
        var body = Chat();
        body["tools"] = JsonNode.Parse("""[{"type": "function", "function": {"name": "get_weather"}}]""");
        var e = await Error("/v1/chat/completions", body);
        Assert.Equal("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", e["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task RequiredToolChoiceWithoutToolsIs400()
    {
        var e = await Error("/v1/chat/completions", Chat(""", "tool_choice": "required" """));
        Assert.Equal("When using `tool_choice`, `tools` must be set.", e["message"]!.GetValue<string>());
    }

    /// <summary>The second turn of an agent loop, as the official SDK sends it: an assistant message with tool calls and null content, then the tool's result.</summary>
    [Fact]
    public async Task ToolCallTurnsWithNullContentRenderThroughTheTemplate()
    {
        var client = f.SdkChatClient();
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather of a city",
            BinaryData.FromString("""{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}"""));
        List<ChatMessage> messages =
        [
            new UserChatMessage("What's the weather in Paris?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_1", "get_weather", BinaryData.FromString("""{"city": "Paris"}"""))]),
            new ToolChatMessage("call_1", "Sunny, 21 C"),
        ];
        // The server has no tool parser, so the tools are only shown to the template (tool_choice none).
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8, ToolChoice = ChatToolChoice.CreateNoneChoice() };
        options.Tools.Add(tool);
        ChatCompletion c = await client.CompleteChatAsync(messages, options);
        Assert.True(c.Usage.OutputTokenCount > 0);

        // Arguments that are not JSON are the client's error, named as such.
        var body = JsonNode.Parse("""
            {"messages": [{"role": "user", "content": "x"},
                          {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}],
             "max_tokens": 2}
            """)!.AsObject();
        var e = await Error("/v1/chat/completions", body);
        Assert.Contains("not valid JSON", e["message"]!.GetValue<string>());
    }

    /// <summary>A stream the client walks away from counts in request_success_total as "abort", as in vLLM.</summary>
    [Fact]
    public async Task AbandonedStreamsAreCountedAsAborts()
    {
        double Aborts(string metrics) => double.Parse(System.Text.RegularExpressions.Regex.Match(metrics,
            "request_success_total\\{finished_reason=\"abort\"[^}]*\\} ([0-9.e+]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        double before = Aborts(await f.Http.GetStringAsync("/metrics"));
        var body = """{"prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true, "stream": true}""";
        // A client of its own that drops the connection instead of draining the rest of the response on dispose.
        using var handler = new SocketsHttpHandler { MaxResponseDrainSize = 0 };
        using var client = new HttpClient(handler) { BaseAddress = f.BaseAddress };
        client.DefaultRequestHeaders.Authorization = f.Http.DefaultRequestHeaders.Authorization;
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") })
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64];
            Assert.True(await stream.ReadAsync(buffer) > 0);
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Aborts(await f.Http.GetStringAsync("/metrics")) <= before)
        {
            Assert.True(DateTime.UtcNow < deadline, "the abandoned stream was never counted");
            await Task.Delay(50);
        }
    }
}
