using System.Text.Json.Nodes;
using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Jinja;

/// <summary>The real chat templates (npm tokenizers) render every golden chat entry byte for byte.</summary>
public sealed class RealChatTemplateTests
{
    private static readonly Lazy<JsonObject> Golden = new(() =>
        JsonNode.Parse(File.ReadAllText(TestPaths.Golden("tokenizers.json")))!.AsObject());

    private static readonly Dictionary<string, Lazy<ChatTemplate>> Templates = new[] { "qwen3", "llama3", "deepseek_v3" }
        .ToDictionary(n => n, n => new Lazy<ChatTemplate>(() =>
            ChatTemplate.FromFolder(NpmTokenizers.Folder(n)) ?? throw new InvalidOperationException(n + " has no template")));

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var family in Templates.Keys)
            for (int i = 0; i < Golden.Value[family]!["chat"]!.AsArray().Count; i++) data.Add(family, i);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Renders_golden(string family, int index)
    {
        var entry = Golden.Value[family]!["chat"]![index]!;
        string rendered = Templates[family].Value.Render(
            entry["messages"]!.DeepClone().AsArray(),
            entry["add_generation_prompt"]!.GetValue<bool>(),
            entry["tools"]?.DeepClone().AsArray(),
            entry["kwargs"]?.DeepClone().AsObject());
        Assert.Equal(entry["rendered"]!.GetValue<string>(), rendered);
    }

    [Fact]
    public void Qwen3_golden_covers_tools_and_thinking_off()
    {
        var chats = Golden.Value["qwen3"]!["chat"]!.AsArray();
        Assert.Contains(chats, c => c!["tools"] is JsonArray);
        Assert.Contains(chats, c => c!["kwargs"]?["enable_thinking"]?.GetValue<bool>() == false);
    }
}
