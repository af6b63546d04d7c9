using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.OpenAi;

/// <summary>A parsed /v1/chat/completions request, with its conversation already rendered to a prompt.</summary>
public sealed record ChatJob(PromptInput Prompt, SamplingParams Params, bool Logprobs, int TopLogprobs, bool Stream, bool IncludeUsage);

/// <summary>/v1/chat/completions: request parsing (messages → chat template) and the response body.</summary>
public static class ChatCompletionsApi
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool", "function"];

    /// <summary>Reads a request body and renders its conversation; invalid input throws <see cref="OpenAiRequestException"/>.</summary>
    public static ChatJob Parse(JsonObject body, LLMEngine engine)
    {
        var f = new RequestFields(body);
        // A template is code run on the server: only the operator chooses it (--chat-template), never a request.
        if (body.ContainsKey("chat_template"))
            throw new OpenAiRequestException("'chat_template' is not accepted in requests; the server's template is used.", "chat_template");
        var messages = ReadMessages(body["messages"]);
        switch (body["response_format"])
        {
            case null:
                break;
            case JsonObject rf when StringOf(rf["type"]) is { } type:
                if (type != "text")
                    throw new OpenAiRequestException($"response_format '{type}' is not supported yet (supported: text).", "response_format");
                break;
            default:
                throw new OpenAiRequestException("'response_format' must be an object with a string 'type'.", "response_format");
        }
        var tools = body["tools"] switch
        {
            null => null,
            JsonArray a when a.All(IsTool) => (JsonArray)a.DeepClone(),
            _ => throw new OpenAiRequestException(
                "'tools' must be a list of {\"type\": \"function\", \"function\": {\"name\": string, \"parameters\": object}}.", "tools"),
        };
        var kwargs = body["chat_template_kwargs"] switch
        {
            null => null,
            JsonObject o => (JsonObject)o.DeepClone(),
            _ => throw new OpenAiRequestException("'chat_template_kwargs' must be an object.", "chat_template_kwargs"),
        };
        bool continueFinal = f.Bool("continue_final_message") ?? false;
        bool addGenerationPrompt = f.Bool("add_generation_prompt") ?? !continueFinal;
        if (continueFinal && addGenerationPrompt)
            throw new OpenAiRequestException("Cannot set both continue_final_message and add_generation_prompt to true.");

        var template = engine.ChatTemplate ?? throw new OpenAiRequestException(
            "The model has no chat template; start the server with --chat-template.");
        string text;
        try
        {
            text = template.Render(messages, addGenerationPrompt, tools, kwargs);
        }
        catch (Tokenization.Jinja.JinjaException e)
        {
            throw new OpenAiRequestException($"Chat template error: {e.Message}");
        }
        if (continueFinal)
            text = CutAfterFinalMessage(text, messages);

        bool logprobs = f.Bool("logprobs") ?? false;
        int topLogprobs = f.Int("top_logprobs") ?? 0;
        if (topLogprobs is < 0 or > 20)
            throw new OpenAiRequestException($"top_logprobs must be between 0 and 20, got {topLogprobs}.", "top_logprobs");
        if (topLogprobs > 0 && !logprobs)
            throw new OpenAiRequestException("top_logprobs requires logprobs to be true.", "top_logprobs");
        var p = SamplingParamsReader.Read(f, engine.GenerationConfig.SamplingDefaults(),
            f.Int("max_completion_tokens") ?? f.Int("max_tokens"), engine.GenerationConfig.MaxNewTokens);
        if (logprobs)
            p = p with { Logprobs = topLogprobs };
        return new ChatJob(new PromptInput { Text = text, AddSpecialTokens = false }, p, logprobs, topLogprobs,
            f.Bool("stream") ?? false, RequestFields.IncludeUsage(body));
    }

    /// <summary>Normalises messages: roles checked, text-part lists joined into one string.</summary>
    private static JsonArray ReadMessages(JsonNode? node)
    {
        if (node is not JsonArray { Count: > 0 } list)
            throw new OpenAiRequestException("'messages' must be a non-empty list.", "messages");
        var result = new JsonArray();
        foreach (var m in list)
        {
            if (m is not JsonObject mo)
                throw new OpenAiRequestException("Each message must be an object.", "messages");
            string role = mo["role"] is JsonValue rv && rv.TryGetValue(out string? r) ? r
                : throw new OpenAiRequestException("Each message needs a string 'role'.", "messages");
            if (!Roles.Contains(role))
                throw new OpenAiRequestException($"Unknown role '{role}' (supported: {string.Join(", ", Roles)}).", "messages");
            var copy = (JsonObject)mo.DeepClone();
            copy["content"] = mo["content"] switch
            {
                null => null,
                JsonValue v when v.TryGetValue(out string? s) => s,
                JsonArray parts => string.Join("\n", parts.Select(TextPart)),
                _ => throw new OpenAiRequestException("'content' must be a string or a list of text parts.", "messages"),
            };
            result.Add(copy);
        }
        return result;
    }

    private static string? StringOf(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    // A tool is a function with a string name; its parameters, when given, are a JSON schema object.
    private static bool IsTool(JsonNode? tool) =>
        tool is JsonObject o && StringOf(o["type"]) == "function" && o["function"] is JsonObject fn
        && StringOf(fn["name"]) is { Length: > 0 }
        && fn["parameters"] is null or JsonObject
        && (fn["description"] is null || StringOf(fn["description"]) != null);

    private static string TextPart(JsonNode? part) =>
        part is JsonObject o && StringOf(o["type"]) == "text" && StringOf(o["text"]) is { } s
            ? s
            : throw new OpenAiRequestException("Only text content parts ({\"type\": \"text\", \"text\": ...}) are supported.", "messages");

    // continue_final_message: the model goes on from the end of the last message's text.
    private static string CutAfterFinalMessage(string rendered, JsonArray messages)
    {
        string last = StringOf(messages[^1]?["content"]) ?? "";
        int at = rendered.LastIndexOf(last, StringComparison.Ordinal);
        if (last.Length == 0 || at < 0)
            throw new OpenAiRequestException("continue_final_message: the final message's text does not appear in the rendered prompt.");
        return rendered[..(at + last.Length)];
    }

    /// <summary>The non-streaming response body.</summary>
    public static JsonObject Response(string id, string model, long created, ChatJob job, RequestOutput output, LLMEngine engine)
    {
        var choices = new JsonArray();
        foreach (var c in output.Outputs)
        {
            choices.Add(new JsonObject
            {
                ["index"] = c.Index,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = c.Text, ["tool_calls"] = new JsonArray() },
                ["logprobs"] = job.Logprobs ? LogprobsFormat.Chat(engine.Tokenizer, c.Logprobs!, job.TopLogprobs) : null,
                ["finish_reason"] = c.FinishReason,
                ["stop_reason"] = OpenAiJson.StopReason(c.StopReason),
            });
        }
        return new JsonObject
        {
            ["id"] = id,
            ["object"] = "chat.completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = choices,
            ["usage"] = OpenAiJson.Usage(output.PromptTokenIds.Count, output.Outputs.Sum(c => c.TokenIds.Count)),
            ["system_fingerprint"] = OpenAiJson.SystemFingerprint,
        };
    }
}
