using System.Text.Json.Nodes;
using OpenAI.Chat;

namespace Pagoda.Server.Tests;

/// <summary>
/// tool_choice required and named, forced through the grammar as vLLM forces them, so even the tiny fortune model
/// returns schema-valid calls; driven by the official OpenAI .NET SDK, whole and streamed, in a two-step agent loop.
/// </summary>
[Collection(ServerCollection.Name)]
public class ForcedToolCallTests(ServerFixture f)
{
    private ChatClient Client => f.SdkChatClient();

    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool("get_weather", "Weather of a city", BinaryData.FromString("""
        {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
         "required": ["city", "days"], "additionalProperties": false}
        """));

    private static readonly ChatTool Time = ChatTool.CreateFunctionTool("get_time", "Time in a zone", BinaryData.FromString("""
        {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}
        """));

    private static void AssertValid(string name, BinaryData arguments)
    {
        var a = JsonNode.Parse(arguments.ToString())!.AsObject();
        if (name == "get_weather")
        {
            Assert.Contains(a["city"]!.GetValue<string>(), new[] { "Paris", "Oslo", "Lima" });
            Assert.InRange(a["days"]!.GetValue<int>(), 1, 7);
        }
        else
        {
            Assert.Equal("get_time", name);
            Assert.Contains(a["zone"]!.GetValue<string>(), new[] { "UTC", "CET" });
        }
    }

    [Fact]
    public async Task ANamedToolIsCalledWithValidArgumentsThenTheLoopGoesOn()
    {
        var options = new ChatCompletionOptions { Temperature = 1, Seed = 5, MaxOutputTokenCount = 60, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather") };
        options.Tools.Add(Weather);
        options.Tools.Add(Time);
        List<ChatMessage> messages = [new UserChatMessage("What's the weather in Paris?")];
        ChatCompletion first = await Client.CompleteChatAsync(messages, options);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        AssertValid(call.FunctionName, call.FunctionArguments);

        // Step two of the agent loop: the call and its result go back; the model answers in text.
        messages.Add(new AssistantChatMessage(first.ToolCalls));
        messages.Add(new ToolChatMessage(call.Id, "Sunny, 21 C"));
        var next = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16, ToolChoice = ChatToolChoice.CreateNoneChoice() };
        next.Tools.Add(Weather);
        ChatCompletion second = await Client.CompleteChatAsync(messages, next);
        Assert.Empty(second.ToolCalls);
        Assert.True(second.Usage.OutputTokenCount > 0);
    }

    [Fact]
    public async Task RequiredCallsOneOfTheToolsWithValidArguments()
    {
        int checkedCalls = 0;
        for (int seed = 0; seed < 3; seed++)
        {
            var options = new ChatCompletionOptions { Temperature = 1, Seed = seed, MaxOutputTokenCount = 120, ToolChoice = ChatToolChoice.CreateRequiredChoice(), AllowParallelToolCalls = false };
            options.Tools.Add(Weather);
            options.Tools.Add(Time);
            ChatCompletion c = await Client.CompleteChatAsync([new UserChatMessage("Weather or time?")], options);
            if (c.FinishReason == ChatFinishReason.Length)
                continue; // cut short: the text comes back as it is
            var call = Assert.Single(c.ToolCalls); // parallel_tool_calls false: exactly one
            AssertValid(call.FunctionName, call.FunctionArguments);
            checkedCalls++;
        }
        Assert.True(checkedCalls >= 2, $"only {checkedCalls} of 3 outputs finished");
    }

    [Fact]
    public async Task AStreamedNamedCallAssemblesToValidArguments()
    {
        var options = new ChatCompletionOptions { Temperature = 1, Seed = 9, MaxOutputTokenCount = 60, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_time") };
        options.Tools.Add(Weather);
        options.Tools.Add(Time);
        string? name = null, id = null;
        var args = new System.Text.StringBuilder();
        await foreach (var u in Client.CompleteChatStreamingAsync([new UserChatMessage("Time?")], options))
        {
            foreach (var t in u.ToolCallUpdates)
            {
                Assert.Equal(0, t.Index);
                name ??= t.FunctionName;
                id ??= t.ToolCallId;
                args.Append(t.FunctionArgumentsUpdate?.ToString());
            }
        }
        Assert.Equal("get_time", name);
        Assert.StartsWith("chatcmpl-tool-", id);
        AssertValid("get_time", BinaryData.FromString(args.ToString()));
    }
}
