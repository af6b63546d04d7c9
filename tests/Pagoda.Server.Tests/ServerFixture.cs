using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.Server.Tests;

/// <summary>One real server on an ephemeral loopback port, shared by the tests of a collection.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ApiKey = "test-key-1234";

    public AsyncLLMEngine Engine { get; private set; } = null!;
    public PagodaServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public StringWriter Log { get; } = new();

    // The server writes the log from its own threads through this wrapper, which locks itself around each write.
    private TextWriter? _logWriter;

    /// <summary>The log so far, read under the writers' lock (a StringWriter read while another thread appends can throw).</summary>
    public string LogText()
    {
        lock (_logWriter ?? (object)Log)
            return Log.ToString();
    }
    public Uri BaseAddress => Server.Address;

    /// <summary>The official OpenAI SDK's chat client for this server, with its key.</summary>
    public OpenAI.Chat.ChatClient SdkChatClient() =>
        new("fortune", new System.ClientModel.ApiKeyCredential(ApiKey), new OpenAI.OpenAIClientOptions { Endpoint = new Uri(BaseAddress, "/v1") });

    public async Task InitializeAsync()
    {
        // A small pool keeps the tests light; it still holds a full 2048-token context several times over.
        // `--generation-config vllm`: temperature 0 is then plain greedy, as the golden outputs were recorded
        // (the model's generation_config.json adds repetition_penalty 1.05).
        Engine = new AsyncLLMEngine(new LLMEngine(new EngineArgs { Model = Paths.FortuneChat, NumKvBlocks = 1024, GenerationConfig = "vllm" }));
        Server = PagodaServer.Create(new ServerOptions
        {
            Port = 0,
            ApiKey = ApiKey,
            ServedModelNames = ["fortune", "fortune-chat"],
            StatsInterval = TimeSpan.FromMilliseconds(200),
            AllowedOrigins = ["https://example.org"],
        }, Engine, _logWriter = TextWriter.Synchronized(Log));
        await Server.StartAsync();
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.StopAsync();
        await Server.DisposeAsync();
        Engine.Dispose();
    }

    public async Task<(int Status, JsonNode? Body)> PostJson(string path, JsonNode body)
    {
        using var response = await Http.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
    }

    /// <summary>Waits until the engine holds no requests and no KV blocks.</summary>
    public async Task<bool> WaitIdle(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            var s = Engine.Stats;
            if (s.NumRunning == 0 && s.NumWaiting == 0 && s.KvCacheUsage == 0)
                return true;
            await Task.Delay(20);
        }
        return false;
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}

/// <summary>Repository locations, found by walking up from the test binary.</summary>
public static class Paths
{
    public static string Root { get; } = FindRoot();
    public static string FortuneChat => Path.Combine(Root, "models", "fortune-chat");
    public static string GoldenModels => Path.Combine(Root, "tests", "fixtures", "golden", "models.json");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Pagoda.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Pagoda.slnx not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>fortune-chat's golden chats recorded from transformers (greedy, 48 new tokens at most).</summary>
public sealed record GoldenChat(JsonArray Messages, string Text, int[] PromptIds, int[] OutputIds)
{
    /// <summary>The run ended on an end-of-sequence token (else it hit the 48-token limit).</summary>
    public string FinishReason => OutputIds[^1] is 8192 or 8194 ? "stop" : "length";

    public static IReadOnlyList<GoldenChat> All { get; } = JsonNode.Parse(File.ReadAllText(Paths.GoldenModels))!["fortune-chat"]!["chats"]!
        .AsArray().Select(c => new GoldenChat(c!["messages"]!.DeepClone().AsArray(), c["text"]!.GetValue<string>(),
            c["prompt_ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray(),
            c["output_ids"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray())).ToList();
}
