using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using Pagoda.OpenAi;

namespace Pagoda.Server.Tests;

/// <summary>
/// Parsed tool calls in the response body and in the streamed chunks, read back by the official OpenAI .NET SDK:
/// calls with ids, names and arguments, finish reason tool_calls, and streamed updates that the SDK assembles.
/// </summary>
[Collection(ServerCollection.Name)]
public class ToolCallResponseTests(ServerFixture f)
{
    private const string Output = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n" +
        "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>";

    private ChatJob Job(bool stream)
    {
        var body = JsonNode.Parse("""
            {"messages": [{"role": "user", "content": "Weather and time in Paris?"}],
             "tools": [{"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "get_time"}}]}
            """)!.AsObject();
        body["stream"] = stream;
        return ChatCompletionsApi.Parse(body, f.Engine.Engine, new ChatServingOptions { EnableAutoToolChoice = true, ToolCallParser = "hermes" });
    }

    private static RequestOutput Out(string text, string? finish) =>
        new("r", null, [1, 2], null, [new CompletionOutput(0, text, [5], null, null, finish, null)], finish != null);

    [Fact]
    public void TheSdkReadsTheCallsOfAResponse()
    {
        var body = ChatCompletionsApi.Response("chatcmpl-1", "fortune", 1, Job(false), Out(Output, "stop"), f.Engine.Engine);
        var c = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(body.ToJsonString()))!;
        Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
        Assert.Equal("Checking.\n", c.Content[0].Text);
        Assert.Equal(["get_weather", "get_time"], c.ToolCalls.Select(t => t.FunctionName));
        Assert.Equal("{\"city\": \"Paris\"}", c.ToolCalls[0].FunctionArguments.ToString());
        Assert.All(c.ToolCalls, t => Assert.StartsWith("chatcmpl-tool-", t.Id));
    }

    [Fact]
    public void TheSdkAssemblesStreamedCalls()
    {
        var stream = new ChatCompletionStream("chatcmpl-2", "fortune", 1, Job(true), f.Engine.Engine);
        var chunks = stream.Start().ToList();
        for (int i = 0; i < Output.Length; i += 4)
        {
            bool last = i + 4 >= Output.Length;
            chunks.AddRange(stream.Next(Out(Output.Substring(i, Math.Min(4, Output.Length - i)), last ? "stop" : null)));
        }
        var updates = chunks.Select(c => ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(c.ToJsonString()))!).ToList();
        var builder = new Dictionary<int, (string Id, string Name, System.Text.StringBuilder Args)>();
        foreach (var u in updates)
        {
            foreach (var t in u.ToolCallUpdates)
            {
                if (t.ToolCallId != null)
                    builder[t.Index] = (t.ToolCallId, t.FunctionName, new());
                builder[t.Index].Args.Append(t.FunctionArgumentsUpdate?.ToString());
            }
        }
        Assert.Equal("Checking.\n", string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text)));
        Assert.Equal(["get_weather", "get_time"], builder.OrderBy(kv => kv.Key).Select(kv => kv.Value.Name));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("{\"city\": \"Paris\"}"), JsonNode.Parse(builder[0].Args.ToString())));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("{\"tz\": \"CET\"}"), JsonNode.Parse(builder[1].Args.ToString())));
        Assert.Equal(ChatFinishReason.ToolCalls, updates.Last(u => u.FinishReason != null).FinishReason);
    }

    /// <summary>With a reasoning parser, the thinking goes to reasoning_content / reasoning and calls are read from what follows it.</summary>
    [Fact]
    public void ReasoningComesFirstThenTheCalls()
    {
        var body = JsonNode.Parse("""
            {"messages": [{"role": "user", "content": "Weather?"}], "tools": [{"type": "function", "function": {"name": "get_weather"}}]}
            """)!.AsObject();
        var serving = new ChatServingOptions { EnableAutoToolChoice = true, ToolCallParser = "hermes" };
        var qwen3 = Pagoda.OpenAi.Reasoning.ReasoningParser.Create("qwen3"); // the engine's --reasoning-parser
        const string Text = "<think>I should call get_weather. <tool_call> is how.</think>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>";
        var job = ChatCompletionsApi.Parse(body, f.Engine.Engine, serving) with { Reasoning = qwen3 };
        var m = ChatCompletionsApi.Response("c", "fortune", 1, job, Out(Text, "stop"), f.Engine.Engine)["choices"]![0]!["message"]!;
        Assert.Equal("I should call get_weather. <tool_call> is how.", m["reasoning_content"]!.GetValue<string>());
        Assert.Equal(m["reasoning_content"]!.GetValue<string>(), m["reasoning"]!.GetValue<string>());
        Assert.Equal("\n", m["content"]!.GetValue<string>());
        Assert.Equal("get_weather", m["tool_calls"]![0]!["function"]!["name"]!.GetValue<string>());

        body["stream"] = true;
        var stream = new ChatCompletionStream("c", "fortune", 1, ChatCompletionsApi.Parse(body, f.Engine.Engine, serving) with { Reasoning = qwen3 }, f.Engine.Engine);
        var chunks = new List<JsonObject>();
        for (int i = 0; i < Text.Length; i += 3)
            chunks.AddRange(stream.Next(Out(Text.Substring(i, Math.Min(3, Text.Length - i)), i + 3 >= Text.Length ? "stop" : null)));
        var deltas = chunks.Select(c => c["choices"]![0]!["delta"]!).ToList();
        Assert.Equal("I should call get_weather. <tool_call> is how.", string.Concat(deltas.Select(d => d["reasoning_content"]?.GetValue<string>())));
        Assert.Single(deltas, d => d["tool_calls"]?[0]?["id"] != null);
        Assert.Equal("tool_calls", chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }
}
