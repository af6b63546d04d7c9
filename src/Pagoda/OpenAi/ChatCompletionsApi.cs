using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.OpenAi.Reasoning;
using Pagoda.OpenAi.Tools;

namespace Pagoda.OpenAi;

/// <summary>A parsed /v1/chat/completions request, with its conversation already rendered to a prompt.</summary>
/// <remarks><see cref="MaxTokens"/> is the request's own max_tokens / max_completion_tokens (null: the server's default),
/// checked against the context once the prompt is tokenized; <see cref="IgnoredFields"/> are fields nothing reads.</remarks>
public sealed record ChatJob(PromptInput Prompt, SamplingParams Params, bool Logprobs, int TopLogprobs, bool Stream, bool IncludeUsage)
{
    public int? MaxTokens { get; init; }
    public IReadOnlyList<string> IgnoredFields { get; init; } = [];

    /// <summary>Reads tool calls out of the output (tool_choice "auto" with --enable-auto-tool-choice), else null.</summary>
    public ToolCallParser? ToolParser { get; init; }

    /// <summary>Splits reasoning from content (--reasoning-parser), else null.</summary>
    public ReasoningParser? Reasoning { get; init; }

    /// <summary>include_reasoning (vLLM): false leaves the reasoning out of the response.</summary>
    public bool IncludeReasoning { get; init; } = true;

    /// <summary>A whole output read as the response carries it: the reasoning, then the content and tool calls after it.</summary>
    public (string? Reasoning, ParsedToolCalls Message) ReadOutput(string output)
    {
        var (reasoning, text) = Reasoning?.Extract(output) ?? (null, output);
        return (reasoning, text != null && ToolParser != null ? ToolParser.Parse(text) : new ParsedToolCalls(text, []));
    }

    /// <summary>The finish reason: as vLLM, "tool_calls" when the model chose to call tools (not when they were forced).</summary>
    public string? FinishReason(string? engineReason, bool calledTools) =>
        calledTools && ToolParser is { Forced: false } ? "tool_calls" : engineReason;
}

/// <summary>/v1/chat/completions: request parsing (messages → chat template) and the response body.</summary>
public static class ChatCompletionsApi
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool", "function"];

    /// <summary>Reads a request body and renders its conversation; invalid input throws <see cref="OpenAiRequestException"/>.</summary>
    public static ChatJob Parse(JsonObject body, LLMEngine engine, ChatServingOptions? serving = null)
    {
        serving ??= new ChatServingOptions();
        var f = new RequestFields(body);
        // A template is code run on the server: only the operator chooses it (--chat-template), never a request.
        if (body.ContainsKey("chat_template"))
            throw new OpenAiRequestException("'chat_template' is not accepted in requests; the server's template is used.", "chat_template");
        var ignored = KnownFields.Check(body, chat: true);
        var messages = ReadMessages(body["messages"]);
        var tools = body["tools"] switch
        {
            null => null,
            JsonArray a when a.All(IsTool) => (JsonArray)a.DeepClone(),
            _ => throw new OpenAiRequestException(
                "'tools' must be a list of {\"type\": \"function\", \"function\": {\"name\": string, \"parameters\": object}}.", "tools"),
        };
        var (toolChoice, named) = CheckToolChoice(body["tool_choice"], tools);
        if (toolChoice == "auto" && !(serving.EnableAutoToolChoice && serving.ToolCallParser != null))
            throw new OpenAiRequestException("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", "tool_choice");
        ToolCallParser? toolParser = toolChoice switch
        {
            "auto" => ToolCallParser.Create(serving.ToolCallParser!),
            "named" => new NamedToolParser(named!),
            "required" => new RequiredToolParser(),
            _ => null,
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
        int? maxTokens = f.Int("max_completion_tokens") ?? f.Int("max_tokens");
        var p = SamplingParamsReader.Read(f, engine.GenerationConfig.SamplingDefaults(), maxTokens, engine.GenerationConfig.MaxNewTokens);
        if (logprobs)
            p = p with { Logprobs = topLogprobs };
        if (toolChoice is "named" or "required")
        {
            // A forced call is a structured output of its own; another one in the same request cannot also hold.
            if (p.StructuredOutputs != null)
                throw new OpenAiRequestException($"tool_choice '{toolChoice}' cannot be combined with a structured output.", "tool_choice");
            string schema = toolChoice == "named" ? ForcedToolCalls.NamedSchema(tools!, named!)
                : ForcedToolCalls.RequiredSchema(tools!, f.Bool("parallel_tool_calls") ?? true);
            // Compact JSON (no free whitespace), so that even a small model spends its tokens on the call itself.
            p = p with { StructuredOutputs = new StructuredOutputsParams { Json = schema, DisableAnyWhitespace = true } };
        }
        // The template already holds the special tokens it wants; add_special_tokens adds the tokenizer's too (vLLM: false).
        return new ChatJob(new PromptInput { Text = text, AddSpecialTokens = f.Bool("add_special_tokens") ?? false }, p, logprobs,
            topLogprobs, f.Bool("stream") ?? false, RequestFields.IncludeUsage(body)) {
            MaxTokens = maxTokens,
            IgnoredFields = ignored,
            ToolParser = toolParser,
            Reasoning = engine.Args.ReasoningParser is { } rp ? ReasoningParser.Create(rp) : null,
            IncludeReasoning = f.Bool("include_reasoning") ?? true,
        };
    }

    // none / auto / required / {"type": "function", "function": {"name": ...}}, checked against the tools as vLLM does
    // (absent with tools means "auto"); returns "none", "auto", "required" or "named" with the tool's name.
    private static (string Choice, string? Name) CheckToolChoice(JsonNode? choice, JsonArray? tools)
    {
        const string NeedsTools = "When using `tool_choice`, `tools` must be set.";
        switch (choice)
        {
            case null:
                return (tools is { Count: > 0 } ? "auto" : "none", null);
            case JsonValue v when v.TryGetValue(out string? s) && s == "none":
                return ("none", null);
            case JsonValue v when v.TryGetValue(out string? s) && s == "auto":
                return tools != null ? ("auto", null) : throw new OpenAiRequestException(NeedsTools, "tool_choice");
            case JsonValue v when v.TryGetValue(out string? s) && s == "required":
                if (tools == null)
                    throw new OpenAiRequestException(NeedsTools, "tool_choice");
                return (tools.Count == 0 ? "none" : "required", null); // OpenAI: required with an empty list behaves as none
            case JsonObject o when StringOf(o["type"]) == "function" && o["function"] is JsonObject fn && StringOf(fn["name"]) is { } name:
                if (tools == null)
                    throw new OpenAiRequestException(NeedsTools, "tool_choice");
                if (!tools.Any(t => StringOf(t?["function"]?["name"]) == name))
                    throw new OpenAiRequestException($"Tool '{name}' has not been passed in 'tools'.", "tool_choice");
                return ("named", name);
            default:
                throw new OpenAiRequestException(
                    "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": string}}.", "tool_choice");
        }
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
                // Absent or null (an assistant turn that only calls tools, as the OpenAI SDKs send it): empty text, as vLLM renders it.
                null => "",
                JsonValue v when v.TryGetValue(out string? s) => s,
                JsonArray parts => string.Join("\n", parts.Select(TextPart)),
                _ => throw new OpenAiRequestException("'content' must be a string or a list of text parts.", "messages"),
            };
            if (role == "assistant" && mo["tool_calls"] is { } calls)
                copy["tool_calls"] = ReadToolCalls(calls);
            result.Add(copy);
        }
        return result;
    }

    // An assistant turn's tool calls; arguments arrive as a JSON string (OpenAI's wire format) and are handed to the
    // template parsed, as transformers' templates expect and vLLM does.
    private static JsonArray ReadToolCalls(JsonNode calls)
    {
        const string Shape = "'tool_calls' must be a list of {\"id\": string, \"type\": \"function\", \"function\": {\"name\": string, \"arguments\": string}}.";
        if (calls is not JsonArray list)
            throw new OpenAiRequestException(Shape, "messages");
        var result = new JsonArray();
        foreach (var call in list)
        {
            if (call is not JsonObject c || c["function"] is not JsonObject fn || StringOf(fn["name"]) is null)
                throw new OpenAiRequestException(Shape, "messages");
            var copy = (JsonObject)c.DeepClone();
            if (StringOf(fn["arguments"]) is { } text)
            {
                try
                {
                    copy["function"]!["arguments"] = JsonNode.Parse(text);
                }
                catch (System.Text.Json.JsonException)
                {
                    throw new OpenAiRequestException($"The arguments of tool call '{StringOf(fn["name"])}' are not valid JSON.", "messages");
                }
            }
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

    // The assistant message; with a reasoning parser it carries reasoning_content and vLLM's newer name, reasoning.
    private static JsonObject Message(ChatJob job, string? content, string? reasoning, JsonArray calls)
    {
        var m = new JsonObject { ["role"] = "assistant", ["content"] = content };
        if (job.Reasoning != null && job.IncludeReasoning)
        {
            m["reasoning_content"] = reasoning;
            m["reasoning"] = reasoning;
        }
        m["tool_calls"] = calls;
        return m;
    }

    /// <summary>The non-streaming response body.</summary>
    public static JsonObject Response(string id, string model, long created, ChatJob job, RequestOutput output, LLMEngine engine)
    {
        var choices = new JsonArray();
        foreach (var c in output.Outputs)
        {
            var (reasoning, parsed) = job.ReadOutput(c.Text);
            var calls = new JsonArray(parsed.Calls.Select(t => (JsonNode)new JsonObject
            {
                ["id"] = t.Id,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = t.Name, ["arguments"] = t.Arguments },
            }).ToArray());
            choices.Add(new JsonObject
            {
                ["index"] = c.Index,
                ["message"] = Message(job, parsed.Content, reasoning, calls),
                ["logprobs"] = job.Logprobs ? LogprobsFormat.Chat(engine.Tokenizer, c.Logprobs!, job.TopLogprobs) : null,
                // As vLLM: a response that called tools finishes with "tool_calls".
                ["finish_reason"] = job.FinishReason(c.FinishReason, parsed.Calls.Count > 0),
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
        }.WithKvTransferParams(output.KvTransferParams);
    }
}
