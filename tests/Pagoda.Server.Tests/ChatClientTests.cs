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
}
