using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Pagoda.OpenAi.Tools;

namespace Pagoda.AI;

/// <summary>
/// Microsoft.Extensions.AI's messages and options as the OpenAI chat request the server would receive, so the
/// in-process client gets exactly the server's handling (template, tools, tool choice, structured output); and the
/// generated text back as M.E.AI contents (text, reasoning, function calls).
/// </summary>
internal static class ChatRequestBuilder
{
    public static JsonObject Body(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var list = new JsonArray();
        if (options?.Instructions is { } instructions)
            list.Add(new JsonObject { ["role"] = "system", ["content"] = instructions });
        foreach (var m in messages)
            AddMessage(list, m);
        var body = new JsonObject { ["messages"] = list };
        if (options is null)
            return body;
        // Values go in as parsed JSON, as a request body's would be (a float held as a .NET float reads differently).
        void Set(string key, JsonNode? value)
        {
            if (value is not null)
                body[key] = JsonNode.Parse(value.ToJsonString());
        }
        Set("temperature", options.Temperature);
        Set("top_p", options.TopP);
        Set("top_k", options.TopK);
        Set("frequency_penalty", options.FrequencyPenalty);
        Set("presence_penalty", options.PresencePenalty);
        Set("seed", options.Seed);
        Set("max_tokens", options.MaxOutputTokens);
        Set("stop", options.StopSequences is { Count: > 0 } stops ? new JsonArray(stops.Select(s => (JsonNode)s).ToArray()) : null);
        Set("parallel_tool_calls", options.AllowMultipleToolCalls);
        if (options.Tools?.OfType<AIFunctionDeclaration>().ToList() is { Count: > 0 } tools)
        {
            body["tools"] = new JsonArray(tools.Select(t => (JsonNode)new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject
                {
                    ["name"] = t.Name,
                    ["description"] = t.Description,
                    ["parameters"] = JsonNode.Parse(t.JsonSchema.GetRawText()),
                },
            }).ToArray());
            Set("tool_choice", options.ToolMode switch
            {
                NoneChatToolMode => "none",
                RequiredChatToolMode { RequiredFunctionName: { } name } => new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = name } },
                RequiredChatToolMode => "required",
                _ => null, // auto
            });
        }
        Set("response_format", options.ResponseFormat switch
        {
            ChatResponseFormatJson { Schema: { } schema } json => new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject { ["name"] = json.SchemaName ?? "response", ["schema"] = JsonNode.Parse(schema.GetRawText()) },
            },
            ChatResponseFormatJson => new JsonObject { ["type"] = "json_object" },
            _ => null,
        });
        return body;
    }

    // One M.E.AI message: its text; an assistant's function calls as tool_calls; each function result as a tool message.
    private static void AddMessage(JsonArray list, ChatMessage m)
    {
        var results = m.Contents.OfType<FunctionResultContent>().ToList();
        foreach (var r in results)
        {
            list.Add(new JsonObject
            {
                ["role"] = "tool",
                ["tool_call_id"] = r.CallId,
                ["content"] = r.Result is string s ? s : JsonSerializer.Serialize(r.Result),
            });
        }
        var calls = m.Contents.OfType<FunctionCallContent>().ToList();
        if (results.Count > 0 && calls.Count == 0 && m.Text.Length == 0)
            return;
        var message = new JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text };
        if (calls.Count > 0)
        {
            message["tool_calls"] = new JsonArray(calls.Select(c => (JsonNode)new JsonObject
            {
                ["id"] = c.CallId,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = JsonSerializer.Serialize(c.Arguments ?? new Dictionary<string, object?>()) },
            }).ToArray());
        }
        list.Add(message);
    }

    /// <summary>Function calls as M.E.AI contents, their arguments parsed.</summary>
    public static IEnumerable<AIContent> Calls(IEnumerable<ToolCall> calls) => calls.Select(c =>
        (AIContent)new FunctionCallContent(c.Id, c.Name, JsonSerializer.Deserialize<Dictionary<string, object?>>(c.Arguments) ?? []));
}
