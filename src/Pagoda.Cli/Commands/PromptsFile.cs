using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.Cli.Commands;

/// <summary>A malformed line of a prompts file, reported with its line number.</summary>
internal sealed class PromptFileException(string path, int line, string problem)
    : Exception($"{path}:{line}: {problem}");

/// <summary>One line of a prompts file: text, token ids, or a chat conversation.</summary>
internal sealed record PromptLine(string? Prompt, IReadOnlyList<int>? TokenIds, JsonArray? Messages);

/// <summary>
/// Reads JSON lines, each `{"prompt": "..."}`, `{"prompt_token_ids": [...]}` or `{"messages": [...]}`.
/// Blank lines are skipped.
/// </summary>
internal static class PromptsFile
{
    public static List<PromptLine> Read(string path)
    {
        if (!File.Exists(path))
            throw new ArgumentException($"{path}: prompts file not found");
        var result = new List<PromptLine>();
        int lineNo = 0;
        foreach (string raw in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(raw))
                continue;
            result.Add(Parse(path, lineNo, raw));
        }
        return result;
    }

    public static PromptLine Parse(string path, int lineNo, string line)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(line);
        }
        catch (JsonException e)
        {
            throw new PromptFileException(path, lineNo, $"not valid JSON ({e.Message})");
        }
        if (node is not JsonObject obj)
            throw new PromptFileException(path, lineNo, "expected a JSON object");

        int kinds = (obj.ContainsKey("prompt") ? 1 : 0) + (obj.ContainsKey("prompt_token_ids") ? 1 : 0) + (obj.ContainsKey("messages") ? 1 : 0);
        if (kinds != 1)
            throw new PromptFileException(path, lineNo, "expected exactly one of \"prompt\", \"prompt_token_ids\" or \"messages\"");

        if (obj["prompt"] is { } p)
            return p is JsonValue v && v.TryGetValue(out string? s)
                ? new PromptLine(s, null, null)
                : throw new PromptFileException(path, lineNo, "\"prompt\" must be a string");
        if (obj["prompt_token_ids"] is { } ids)
        {
            if (ids is not JsonArray arr || arr.Count == 0)
                throw new PromptFileException(path, lineNo, "\"prompt_token_ids\" must be a non-empty list of integers");
            var list = new List<int>(arr.Count);
            foreach (var e in arr)
            {
                if (e is not JsonValue ev || !ev.TryGetValue(out int id) || id < 0)
                    throw new PromptFileException(path, lineNo, "\"prompt_token_ids\" must hold non-negative integers");
                list.Add(id);
            }
            return new PromptLine(null, list, null);
        }
        if (obj["messages"] is not JsonArray messages || messages.Count == 0)
            throw new PromptFileException(path, lineNo, "\"messages\" must be a non-empty list");
        foreach (var m in messages)
        {
            if (m is not JsonObject mo || mo["role"] is not JsonValue role || !role.TryGetValue(out string? _))
                throw new PromptFileException(path, lineNo, "each message needs a string \"role\"");
        }
        return new PromptLine(null, null, (JsonArray)messages.DeepClone());
    }
}
