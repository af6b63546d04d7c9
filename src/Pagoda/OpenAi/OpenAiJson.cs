using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>Small pieces shared by every OpenAI response body.</summary>
public static class OpenAiJson
{
    /// <summary>Identifies the serving stack in responses.</summary>
    public const string SystemFingerprint = "pagoda";

    /// <summary>A fresh id with OpenAI's prefix (cmpl, chatcmpl, ...).</summary>
    public static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    /// <summary>Token counts.</summary>
    public static JsonObject Usage(int promptTokens, int completionTokens) => new()
    {
        ["prompt_tokens"] = promptTokens,
        ["total_tokens"] = promptTokens + completionTokens,
        ["completion_tokens"] = completionTokens,
    };

    /// <summary>vLLM's stop_reason: the stop token id, the stop string, or null.</summary>
    public static JsonNode? StopReason(object? reason) => reason switch
    {
        int id => id,
        string s => s,
        _ => null,
    };

    /// <summary>
    /// One streamed chunk (`chat.completion.chunk` or `text_completion`); with include_usage every chunk carries
    /// usage, null until the last one (OpenAI's rule).
    /// </summary>
    public static JsonObject StreamChunk(string id, string objectType, long created, string model, bool includeUsage, JsonObject[] choices)
    {
        var chunk = new JsonObject
        {
            ["id"] = id,
            ["object"] = objectType,
            ["created"] = created,
            ["model"] = model,
            ["system_fingerprint"] = SystemFingerprint,
            ["choices"] = new JsonArray(choices),
        };
        if (includeUsage)
            chunk["usage"] = null;
        return chunk;
    }

    /// <summary>OpenAI's error body.</summary>
    public static JsonObject Error(string message, string type = "BadRequestError", int code = 400, string? param = null) => new()
    {
        ["object"] = "error",
        ["message"] = message,
        ["type"] = type,
        ["param"] = param,
        ["code"] = code,
    };
}
