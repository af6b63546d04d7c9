using System.Text.Json;
using System.Text.Json.Nodes;
using Pagoda.Loading;
using Pagoda.Tokenization.Jinja;

namespace Pagoda.Tokenization;

/// <summary>
/// A model's chat template: turns a conversation (OpenAI-style messages) into the prompt text the model was
/// trained on, rendered the way Hugging Face transformers' <c>apply_chat_template</c> does.
/// </summary>
public sealed class ChatTemplate
{
    private static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "pad_token"];

    private readonly JinjaTemplate _template;

    private ChatTemplate(JinjaTemplate template, string source, string origin, IReadOnlyDictionary<string, string> specialTokens)
    {
        _template = template;
        Source = source;
        Origin = origin;
        SpecialTokens = specialTokens;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Where the template came from: a file path, or "--chat-template" for inline text.</summary>
    public string Origin { get; }

    /// <summary>Special token strings from tokenizer_config.json (bos_token, eos_token, ...), visible to the template.</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    /// <summary>
    /// Loads the chat template of the model in <paramref name="modelDir"/>. Precedence: <paramref name="overridePath"/>
    /// (a file, or if no such file exists, the template text itself), then <c>chat_template</c> in
    /// tokenizer_config.json (a string, or the named list form where "default" is picked), then a
    /// chat_template.jinja file. Returns null when the model has none.
    /// Throws <see cref="ModelLoadException"/> naming the file when it cannot be read or parsed.
    /// </summary>
    public static ChatTemplate? FromFolder(string modelDir, string? overridePath = null)
    {
        var configPath = Path.Combine(modelDir, "tokenizer_config.json");
        var config = ReadConfig(configPath);
        var tokens = ReadSpecialTokens(config);

        string? source = null, origin = null;
        if (overridePath != null)
        {
            if (File.Exists(overridePath)) (source, origin) = (ReadText(overridePath), overridePath);
            else (source, origin) = (overridePath, "--chat-template");
        }
        else if (config != null && TemplateFromConfig(config, configPath) is { } fromConfig)
        {
            (source, origin) = (fromConfig, configPath);
        }
        else
        {
            var jinjaPath = Path.Combine(modelDir, "chat_template.jinja");
            if (File.Exists(jinjaPath)) (source, origin) = (ReadText(jinjaPath), jinjaPath);
        }
        if (source == null || origin == null) return null;

        try
        {
            return new ChatTemplate(JinjaTemplate.Parse(source, JinjaOptions.ChatTemplate), source, origin, tokens);
        }
        catch (JinjaException e)
        {
            throw new ModelLoadException(origin, "invalid chat template: " + e.Message, e);
        }
    }

    /// <summary>
    /// Renders the conversation. The template sees <c>messages</c>, <c>add_generation_prompt</c>, <c>tools</c>
    /// (only when given), the special tokens, and each entry of <paramref name="kwargs"/> (e.g. <c>enable_thinking</c>).
    /// Throws <see cref="JinjaException"/> when the template rejects the input (e.g. via <c>raise_exception</c>).
    /// </summary>
    public string Render(JsonArray messages, bool addGenerationPrompt, JsonArray? tools = null, JsonObject? kwargs = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var vars = new Dictionary<string, object?>();
        foreach (var (name, value) in SpecialTokens) vars[name] = value;
        if (kwargs != null)
            foreach (var (name, value) in kwargs) vars[name] = value;
        vars["messages"] = messages;
        vars["add_generation_prompt"] = addGenerationPrompt;
        if (tools != null) vars["tools"] = tools;
        return _template.Render(vars);
    }

    private static JsonObject? ReadConfig(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(ReadText(path)) as JsonObject
                ?? throw new ModelLoadException(path, "expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, "invalid JSON: " + e.Message, e);
        }
    }

    private static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, "cannot read: " + e.Message, e);
        }
    }

    private static string? TemplateFromConfig(JsonObject config, string path)
    {
        switch (config["chat_template"])
        {
            case null:
                return null;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return v.GetValue<string>();
            case JsonArray list:
                // Named templates: [{"name": "default", "template": ...}, {"name": "tool_use", ...}].
                var entries = list.OfType<JsonObject>().ToList();
                var chosen = entries.FirstOrDefault(e => e["name"]?.GetValueKind() == JsonValueKind.String && e["name"]!.GetValue<string>() == "default")
                    ?? throw new ModelLoadException(path, "chat_template list has no entry named \"default\"");
                if (chosen["template"] is JsonValue t && t.GetValueKind() == JsonValueKind.String) return t.GetValue<string>();
                throw new ModelLoadException(path, "chat_template \"default\" entry has no template string");
            default:
                throw new ModelLoadException(path, "chat_template must be a string or a list of named templates");
        }
    }

    // Each token is either "text" or an AddedToken object {"content": "text", ...}.
    private static Dictionary<string, string> ReadSpecialTokens(JsonObject? config)
    {
        var tokens = new Dictionary<string, string>();
        if (config == null) return tokens;
        foreach (var name in SpecialTokenNames)
        {
            var node = config[name] is JsonObject obj ? obj["content"] : config[name];
            if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) tokens[name] = v.GetValue<string>();
        }
        return tokens;
    }
}
