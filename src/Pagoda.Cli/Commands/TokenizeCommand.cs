using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pagoda.Tokenization;

namespace Pagoda.Cli.Commands;

/// <summary>
/// `pagoda tokenize`: shows the ids and token strings of a text or of a rendered conversation, like
/// vLLM's /tokenize. The folder needs only tokenizer.json (and tokenizer_config.json for the template).
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = TokenizerOption();
        var text = new Option<string?>("--text") { Description = "Text to tokenize as given." };
        var messages = new Option<string?>("--messages") { Description = "JSON file: a list of chat messages, rendered with the chat template." };
        var tools = new Option<string?>("--tools") { Description = "JSON file: a list of tool definitions passed to the chat template." };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "End the rendered chat with the assistant's turn opener." };
        var kwargs = new Option<string?>("--chat-template-kwargs") { Description = "JSON object of extra template variables, e.g. {\"enable_thinking\": false}." };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "Chat template file (or template text) overriding the folder's." };
        var addSpecial = new Option<bool>("--add-special-tokens") { Description = "Add the tokenizer's special tokens (such as BOS)." };

        var cmd = new Command("tokenize", "Print the token ids and token strings of a text or a chat.");
        foreach (var o in new Option[] { tokenizer, text, messages, tools, generationPrompt, kwargs, chatTemplate, addSpecial })
            cmd.Add(o);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            string dir = r.GetValue(tokenizer) ?? EngineArgs.DefaultModel;
            string? given = r.GetValue(text);
            string? messagesFile = r.GetValue(messages);
            if ((given is null) == (messagesFile is null))
                throw new ArgumentException("give exactly one of --text and --messages");
            if (given is not null && (r.GetValue(tools) ?? r.GetValue(kwargs) ?? r.GetValue(chatTemplate)) is not null)
                throw new ArgumentException("--tools, --chat-template-kwargs and --chat-template apply only to --messages");

            var tok = Tokenizer.FromFolder(dir);
            string prompt = given ?? Render(dir, messagesFile!, r.GetValue(tools), r.GetValue(kwargs),
                r.GetValue(chatTemplate), r.GetValue(generationPrompt));
            var ids = tok.Encode(prompt, r.GetValue(addSpecial));
            Write(r.InvocationConfiguration.Output, prompt, ids, tok);
            return 0;
        }));
        return cmd;
    }

    public static Option<string?> TokenizerOption() =>
        new("--tokenizer") { Description = "Folder with tokenizer.json (default: the embedded model's)." };

    private static string Render(string dir, string messagesFile, string? toolsFile, string? kwargsJson,
        string? templateOverride, bool addGenerationPrompt)
    {
        var template = ChatTemplate.FromFolder(dir, templateOverride)
            ?? throw new ArgumentException($"{dir} has no chat template (give --chat-template)");
        var list = ReadJson(messagesFile, "--messages") switch
        {
            JsonArray a => a,
            JsonObject o when o["messages"] is JsonArray a => a, // a vLLM request body works too
            _ => throw new ArgumentException($"{messagesFile}: expected a JSON list of messages"),
        };
        JsonArray? toolList = toolsFile is null ? null
            : ReadJson(toolsFile, "--tools") as JsonArray ?? throw new ArgumentException($"{toolsFile}: expected a JSON list of tools");
        JsonObject? extra = kwargsJson is null ? null
            : Parse(kwargsJson, "--chat-template-kwargs") as JsonObject ?? throw new ArgumentException("--chat-template-kwargs must be a JSON object");
        return template.Render(list, addGenerationPrompt, toolList, extra);
    }

    private static JsonNode? ReadJson(string path, string flag)
    {
        if (!File.Exists(path)) throw new ArgumentException($"{flag}: {path} not found");
        return Parse(File.ReadAllText(path), path);
    }

    private static JsonNode? Parse(string json, string origin)
    {
        try { return JsonNode.Parse(json); }
        catch (JsonException e) { throw new ArgumentException($"{origin}: invalid JSON: {e.Message}", e); }
    }

    private static void Write(TextWriter output, string prompt, IReadOnlyList<int> ids, Tokenizer tok)
    {
        using var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            j.WriteStartObject();
            j.WriteString("prompt", prompt);
            j.WriteStartArray("ids");
            foreach (int id in ids) j.WriteNumberValue(id);
            j.WriteEndArray();
            j.WriteStartArray("tokens");
            foreach (int id in ids) j.WriteStringValue(tok.IdToToken(id));
            j.WriteEndArray();
            j.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
