using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.Server.Tests;

/// <summary>Without --served-model-name the model is served under the name it was given.</summary>
public class ServedNameTests
{
    [Fact]
    public async Task EmbeddedModelIsServedAsFortuneChat()
    {
        using var engine = new AsyncLLMEngine(new LLMEngine(new EngineArgs { NumKvBlocks = 256 }));
        var server = PagodaServer.Create(new ServerOptions { Port = 0 }, engine, TextWriter.Null);
        await server.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = server.Address };
            var models = JsonNode.Parse(await http.GetStringAsync("/v1/models"))!;
            Assert.Equal("fortune-chat", models["data"]![0]!["id"]!.GetValue<string>());
        }
        finally
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
    }
}
