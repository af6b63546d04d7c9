using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace Pagoda.Server.Tests;

/// <summary>The official OpenAI .NET SDK, pointed at the server by base URL only.</summary>
[Collection(ServerCollection.Name)]
public class OpenAiSdkTests(ServerFixture f)
{
    private OpenAIClientOptions Options => new() { Endpoint = new Uri(f.BaseAddress, "/v1") };
    private ApiKeyCredential Key => new(ServerFixture.ApiKey);

    private static List<ChatMessage> Messages(JsonArray messages) => messages.Select(m => (ChatMessage)(m!["role"]!.GetValue<string>() switch
    {
        "system" => new SystemChatMessage(m["content"]!.GetValue<string>()),
        "assistant" => new AssistantChatMessage(m["content"]!.GetValue<string>()),
        _ => new UserChatMessage(m["content"]!.GetValue<string>()),
    })).ToList();

    [Fact]
    public async Task GreedyChatCompletionsEqualTheGoldenChats()
    {
        var client = new ChatClient("fortune", Key, Options);
        foreach (var g in GoldenChat.All)
        {
            ChatCompletion c = await client.CompleteChatAsync(Messages(g.Messages), new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 48 });
            Assert.Equal(g.Text, c.Content[0].Text);
            Assert.Equal(g.PromptIds.Length, c.Usage.InputTokenCount);
            Assert.Equal(g.OutputIds.Length, c.Usage.OutputTokenCount);
            Assert.Equal(g.FinishReason == "stop" ? ChatFinishReason.Stop : ChatFinishReason.Length, c.FinishReason);
            Assert.StartsWith("chatcmpl-", c.Id);
            Assert.Equal("fortune", c.Model);
            Assert.Equal("pagoda", c.SystemFingerprint);
            Assert.Equal(ChatMessageRole.Assistant, c.Role);
        }
    }

    [Fact]
    public async Task StreamingChatConcatenatesToTheGoldenText()
    {
        var client = new ChatClient("fortune", Key, Options);
        var g = GoldenChat.All[3];
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (var u in client.CompleteChatStreamingAsync(Messages(g.Messages), new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 48 }))
        {
            updates++;
            foreach (var part in u.ContentUpdate)
                text.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal(g.Text, text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.True(updates > 10);
        Assert.NotNull(usage); // the SDK asks for include_usage
        Assert.Equal(g.OutputIds.Length, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task CompletionsThroughTheSdk()
    {
        // SDK 2.15 keeps its legacy completions client internal; its public pipeline (auth, retries) sends the request.
        var pipeline = new OpenAIClient(Key, Options).Pipeline;
        using PipelineMessage message = pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(f.BaseAddress, "/v1/completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        var request = new JsonObject { ["model"] = "fortune", ["prompt"] = "Hello, my name is", ["max_tokens"] = 8, ["temperature"] = 0, ["ignore_eos"] = true };
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(request.ToJsonString()));
        await pipeline.SendAsync(message);
        Assert.Equal(200, message.Response!.Status);
        var body = JsonNode.Parse(message.Response.Content.ToString())!;
        Assert.Equal("text_completion", body["object"]!.GetValue<string>());
        Assert.Equal("length", body["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal(8, body["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(body["choices"]![0]!["text"]!.GetValue<string>()));
    }

    [Fact]
    public async Task ModelsListEveryServedName()
    {
        var models = (await new OpenAIModelClient(Key, Options).GetModelsAsync()).Value;
        Assert.Equal(["fortune", "fortune-chat"], models.Select(m => m.Id));
        Assert.Equal("pagoda", models[0].OwnedBy);
    }

    [Fact]
    public async Task EmbeddingsAreNormalizedAndDeterministic()
    {
        var client = new EmbeddingClient("fortune", Key, Options);
        var all = (await client.GenerateEmbeddingsAsync(["A fortune cookie", "A fortune cookie", "Something else entirely"])).Value;
        var vectors = all.Select(e => e.ToFloats().ToArray()).ToList();
        Assert.All(vectors, v => Assert.Equal(256, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 4));
        Assert.Equal(vectors[0], vectors[1]);
        Assert.NotEqual(vectors[0], vectors[2]);
        Assert.Equal([0, 1, 2], all.Select(e => e.Index));
    }
}
