using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi.Tools;

/// <summary>
/// Hermes (Qwen2.5, Qwen3, Hermes): each call is `&lt;tool_call&gt;{"name": ..., "arguments": {...}}&lt;/tool_call&gt;`
/// after any text; the text before the first call is the content.
/// </summary>
internal sealed class HermesToolParser : ToolCallParser
{
    private const string Start = "<tool_call>", End = "</tool_call>";

    public override ParsedToolCalls Parse(string output)
    {
        int at = output.IndexOf(Start, StringComparison.Ordinal);
        if (at < 0)
            return new(output, []);
        var calls = new List<ToolCall>();
        for (int i = at; i >= 0 && i < output.Length; i = output.IndexOf(Start, i, StringComparison.Ordinal))
        {
            i += Start.Length;
            int end = output.IndexOf(End, i, StringComparison.Ordinal);
            string block = end < 0 ? output[i..] : output[i..end];
            if (JsonCalls.FromObject(block, this) is not { } call)
                return new(output, []); // not a well-formed call: all of it is text
            calls.Add(call);
            if (end < 0)
                break;
            i = end + End.Length;
        }
        return new(at > 0 ? output[..at] : null, calls);
    }

    internal override int CallsStart(string text) => text.IndexOf(Start, StringComparison.Ordinal);

    internal override int HoldBack(string text) => JsonCalls.PrefixOverlap(text, Start);

    internal override List<PartialCall> PartialCalls(string calls) => JsonScan.Objects(calls);
}

/// <summary>Llama 3.x JSON calls: the whole output is `{"name": ..., "parameters": {...}}` objects joined by "; ", maybe after &lt;|python_tag|&gt;.</summary>
internal sealed class Llama3JsonToolParser : ToolCallParser
{
    private const string PythonTag = "<|python_tag|>";

    public override ParsedToolCalls Parse(string output)
    {
        int start = output.StartsWith(PythonTag, StringComparison.Ordinal) ? PythonTag.Length : 0;
        if (start == 0 && !output.StartsWith('{'))
            return new(output, []);
        var calls = new List<ToolCall>();
        while (start < output.Length)
        {
            int end = JsonScan.ValueEnd(output, start);
            if (end < 0 || JsonCalls.FromObject(output[start..end], this) is not { } call)
                return new(output, []);
            calls.Add(call);
            start = end + "; ".Length;
        }
        return new(null, calls);
    }

    internal override int CallsStart(string text) =>
        text.StartsWith(PythonTag, StringComparison.Ordinal) || text.StartsWith('{') ? 0 : -1;

    // Until the output shows what it is, all of it may still be the start of a call.
    internal override int HoldBack(string text) => PythonTag.StartsWith(text, StringComparison.Ordinal) ? text.Length : 0;

    internal override List<PartialCall> PartialCalls(string calls) => JsonScan.Objects(calls);
}

/// <summary>Mistral: `[TOOL_CALLS]` then a JSON list of {"name", "arguments"}; ids are 9 letters and digits as Mistral's own.</summary>
internal sealed class MistralToolParser : ToolCallParser
{
    private const string Start = "[TOOL_CALLS]";
    private const string IdChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    public override ParsedToolCalls Parse(string output)
    {
        int at = output.IndexOf(Start, StringComparison.Ordinal);
        if (at < 0)
            return new(output, []);
        string json = output[(at + Start.Length)..].Replace(Start, "", StringComparison.Ordinal).Trim();
        try
        {
            var list = JsonNode.Parse(json) switch
            {
                JsonArray a => a.ToList(),
                JsonObject o => [o],
                _ => null,
            };
            var calls = list?.Select(n => JsonCalls.FromNode(n, this)).ToList();
            if (calls == null || calls.Any(c => c == null))
                return new(output, []);
            return new(at > 0 ? output[..at] : null, calls!);
        }
        catch (JsonException)
        {
            return new(output, []);
        }
    }

    internal override int CallsStart(string text) => text.IndexOf(Start, StringComparison.Ordinal);

    internal override int HoldBack(string text) => JsonCalls.PrefixOverlap(text, Start);

    internal override List<PartialCall> PartialCalls(string calls) => JsonScan.Objects(calls);

    internal override string NewId() => string.Concat(Enumerable.Range(0, 9).Select(_ => IdChars[Random.Shared.Next(IdChars.Length)]));
}

/// <summary>Shared by the JSON parsers.</summary>
internal static class JsonCalls
{
    /// <summary>A call from one object's text, or null when it is not `{"name": string, "arguments"|"parameters": ...}`.</summary>
    public static ToolCall? FromObject(string text, ToolCallParser parser)
    {
        try
        {
            return FromNode(JsonNode.Parse(text.Trim()), parser);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static ToolCall? FromNode(JsonNode? node, ToolCallParser parser)
    {
        if (node is not JsonObject o || o["name"] is not JsonValue nv || !nv.TryGetValue(out string? name))
            return null;
        var args = o.TryGetPropertyValue("arguments", out var a) ? a : o["parameters"];
        return new ToolCall(parser.NewId(), name, JsonScan.PyDumps(args ?? new JsonObject()));
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that begins <paramref name="marker"/>.</summary>
    public static int PrefixOverlap(string text, string marker)
    {
        for (int n = Math.Min(marker.Length - 1, text.Length); n > 0; n--)
        {
            if (text.EndsWith(marker[..n], StringComparison.Ordinal))
                return n;
        }
        return 0;
    }
}
