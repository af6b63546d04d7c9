using System.Text.Json.Nodes;
using Pagoda.Loading;
using Pagoda.Tests.Support;
using Pagoda.Tokenization;
using Pagoda.Tokenization.Jinja;

namespace Pagoda.Tests.Jinja;

public sealed class ChatTemplateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pagoda-chat-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<int> FortuneChatCases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < GoldenChat().Count; i++) data.Add(i);
        return data;
    }

    private static JsonArray GoldenChat() =>
        JsonNode.Parse(File.ReadAllText(TestPaths.Golden("tokenizers.json")))!["fortune"]!["chat"]!.AsArray();

    [Theory]
    [MemberData(nameof(FortuneChatCases))]
    public void FortuneChatMatchesGolden(int index)
    {
        var entry = GoldenChat()[index]!;
        var template = ChatTemplate.FromFolder(TestPaths.Model("fortune-chat"));
        Assert.NotNull(template);
        var rendered = template.Render(
            entry["messages"]!.AsArray(),
            entry["add_generation_prompt"]!.GetValue<bool>(),
            entry["tools"]?.AsArray(),
            entry["kwargs"]?.AsObject());
        Assert.Equal(entry["rendered"]!.GetValue<string>(), rendered);
    }

    [Fact]
    public void GoldenHasEntries() => Assert.True(GoldenChat().Count >= 6);

    private ChatTemplate Load(string? config = null, string? jinja = null, string? overridePath = null)
    {
        if (config != null) File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), config);
        if (jinja != null) File.WriteAllText(Path.Combine(_dir, "chat_template.jinja"), jinja);
        var t = ChatTemplate.FromFolder(_dir, overridePath);
        Assert.NotNull(t);
        return t;
    }

    private static JsonArray User(string text) => new(new JsonObject { ["role"] = "user", ["content"] = text });

    [Fact]
    public void NoTemplateGivesNull()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"chat_template": null}""");
        Assert.Null(ChatTemplate.FromFolder(_dir));
    }

    [Fact]
    public void ConfigTemplateBeatsJinjaFile() =>
        Assert.Equal("config", Load("""{"chat_template": "config"}""", jinja: "file").Render([], false));

    [Fact]
    public void JinjaFileUsedWhenConfigHasNone() =>
        Assert.Equal("file", Load("""{"eos_token": "</s>"}""", jinja: "file\n").Render([], false));

    [Fact]
    public void NamedListPicksDefault() =>
        Assert.Equal("D", Load("""{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}""").Render([], false));

    [Fact]
    public void OverrideFileBeatsEverything()
    {
        var path = Path.Combine(_dir, "custom.jinja");
        File.WriteAllText(path, "custom {{ messages[0].content }}");
        Assert.Equal("custom hi", Load("""{"chat_template": "config"}""", overridePath: path).Render(User("hi"), false));
    }

    [Fact]
    public void OverrideThatIsNotAFileIsTemplateText()
    {
        var t = Load("""{"chat_template": "config"}""", overridePath: "inline{{ add_generation_prompt }}");
        Assert.Equal("inlineTrue", t.Render([], true));
        Assert.Equal("--chat-template", t.Origin);
    }

    [Fact]
    public void SpecialTokensAreVariablesInBothForms()
    {
        var t = Load("""
            {"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>", "unk_token": null,
             "chat_template": "{{ bos_token }}{{ messages[0]['content'] }}{{ eos_token }}{{ unk_token is defined }}"}
            """);
        Assert.Equal("<s>hi</s>False", t.Render(User("hi"), false));
        Assert.Equal("<s>", t.SpecialTokens["bos_token"]);
    }

    [Fact]
    public void ToolsOnlyDefinedWhenGivenAndKwargsArePassed()
    {
        var t = Load("""{"chat_template": "{{ tools is defined }}{% if tools %}{{ tools|tojson }}{% endif %}{{ enable_thinking }}"}""");
        Assert.Equal("FalseFalse", t.Render([], false, kwargs: new JsonObject { ["enable_thinking"] = false }));
        Assert.Equal("""True[{"name": "f"}]""", t.Render([], false, new JsonArray(new JsonObject { ["name"] = "f" })));
    }

    [Fact]
    public void ChatTemplatesTrimAndLstripBlocks() =>
        Assert.Equal("hi\n", Load(jinja: "{% for m in messages %}\n  {% if true %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}\n").Render(User("hi"), false));

    [Fact]
    public void ParseErrorNamesTheFile()
    {
        var e = Assert.Throws<ModelLoadException>(() => Load(jinja: "ok\n{% if %}"));
        Assert.Equal(Path.Combine(_dir, "chat_template.jinja"), e.Path);
        Assert.Contains("line 2", e.Problem);
        Assert.IsType<JinjaException>(e.InnerException);
    }

    [Fact]
    public void RaiseExceptionSurfacesAsJinjaException()
    {
        var t = Load("""{"chat_template": "{% if messages|length == 0 %}{{ raise_exception('need a message') }}{% endif %}"}""");
        Assert.Equal("line 1: need a message", Assert.Throws<JinjaException>(() => t.Render([], false)).Message);
    }
}
