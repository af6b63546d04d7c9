using System.Text;
using Microsoft.Extensions.AI;
using Pagoda.AI;

namespace Pagoda.Server.Tests;

/// <summary>The in-process IChatClient gives the same greedy answers as the server.</summary>
public class ChatClientTests
{
    private static List<ChatMessage> Messages(GoldenChat g) =>
        g.Messages.Select(m => new ChatMessage(new ChatRole(m!["role"]!.GetValue<string>()), m["content"]!.GetValue<string>())).ToList();

    [Fact]
    public async Task GreedyResponsesAndStreamsEqualTheGoldenChats()
    {
        using IChatClient client = new PagodaChatClient(new EngineArgs { Model = Paths.FortuneChat, NumKvBlocks = 256, GenerationConfig = "vllm" });
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 48 };
        var g = GoldenChat.All[0];
        var response = await client.GetResponseAsync(Messages(g), options);
        Assert.Equal(g.Text, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason); // the golden run filled its 48 tokens
        Assert.Equal(g.PromptIds.Length, response.Usage!.InputTokenCount);
        Assert.Equal(g.OutputIds.Length, response.Usage.OutputTokenCount);

        var streamed = new StringBuilder();
        var h = GoldenChat.All[4];
        await foreach (var update in client.GetStreamingResponseAsync(Messages(h), options))
            streamed.Append(update.Text);
        Assert.Equal(h.Text, streamed.ToString());
        Assert.Equal("pagoda", client.GetService<ChatClientMetadata>()!.ProviderName);
    }

    private enum City { Paris, Oslo, Lima }

    /// <summary>
    /// A required function call comes back as FunctionCallContent with schema-valid arguments, its result goes back as
    /// FunctionResultContent in the next turn; a JSON-schema response format gives JSON of that shape.
    /// </summary>
    [Fact]
    public async Task FunctionCallsAndJsonSchemaResponses()
    {
        using IChatClient client = new PagodaChatClient(new EngineArgs { Model = Paths.FortuneChat, NumKvBlocks = 256, GenerationConfig = "vllm" });
        var weather = AIFunctionFactory.Create((City city, long days) => $"Sunny in {city} for {days} days", "get_weather", "Weather of a city");
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 60, Tools = [weather], ToolMode = ChatToolMode.RequireSpecific("get_weather") };
        List<ChatMessage> messages = [new(ChatRole.User, "Weather in Oslo?")];
        var first = await client.GetResponseAsync(messages, options);
        var call = Assert.Single(first.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("get_weather", call.Name);
        Assert.Contains(call.Arguments!["city"]!.ToString(), Enum.GetNames<City>());
        Assert.Matches("^-?[0-9]+$", call.Arguments["days"]!.ToString()); // an integer (unbounded in the schema AIFunctionFactory makes)

        messages.AddRange(first.Messages);
        messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, await weather.InvokeAsync(new AIFunctionArguments(call.Arguments)))]));
        var second = await client.GetResponseAsync(messages, new ChatOptions { Temperature = 0, MaxOutputTokens = 8, Tools = [weather], ToolMode = ChatToolMode.None });
        Assert.Empty(second.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.True(second.Usage!.OutputTokenCount > 0);

        var schema = System.Text.Json.JsonDocument.Parse("""
            {"type": "object", "properties": {"mood": {"type": "string", "enum": ["happy", "sad"]}}, "required": ["mood"], "additionalProperties": false}
            """).RootElement;
        var json = await client.GetResponseAsync([new(ChatRole.User, "Mood?")],
            new ChatOptions { Temperature = 0, MaxOutputTokens = 200, ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "mood") });
        Assert.Contains(System.Text.Json.Nodes.JsonNode.Parse(json.Text)!["mood"]!.GetValue<string>(), new[] { "happy", "sad" });

        // Auto tool choice needs a tool-call parser, as on the server.
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => client.GetResponseAsync(messages, new ChatOptions { Tools = [weather] }));
        Assert.Contains("--tool-call-parser", e.Message);
    }
}
