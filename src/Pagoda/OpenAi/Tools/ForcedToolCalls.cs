using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi.Tools;

/// <summary>
/// tool_choice "required" and a named tool, forced through structured output as vLLM forces them: a named tool's
/// output is its arguments, constrained by its parameters' schema; "required" outputs a JSON list of
/// {"name", "parameters"} constrained to the tools given (at least one call; one only without parallel_tool_calls).
/// </summary>
internal static class ForcedToolCalls
{
    /// <summary>The schema of a named tool's arguments: its parameters (an empty object schema when it has none).</summary>
    public static string NamedSchema(JsonArray tools, string name) =>
        Parameters(tools.First(t => t?["function"]?["name"]?.GetValue<string>() == name)!).ToJsonString();

    /// <summary>The schema of the list a "required" tool choice generates.</summary>
    public static string RequiredSchema(JsonArray tools, bool parallel)
    {
        var items = new JsonArray(tools.Select(t => (JsonNode)new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["name"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray(t!["function"]!["name"]!.GetValue<string>()) },
                ["parameters"] = Parameters(t),
            },
            ["required"] = new JsonArray("name", "parameters"),
            ["additionalProperties"] = false,
        }).ToArray());
        var schema = new JsonObject { ["type"] = "array", ["minItems"] = 1, ["items"] = new JsonObject { ["anyOf"] = items } };
        if (!parallel)
            schema["maxItems"] = 1;
        return schema.ToJsonString();
    }

    private static JsonNode Parameters(JsonNode tool) =>
        tool["function"]?["parameters"]?.DeepClone() ?? new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
}

/// <summary>A named tool's forced output: all of it is the call's arguments.</summary>
internal sealed class NamedToolParser(string name) : ToolCallParser
{
    public override bool Forced => true;

    public override ParsedToolCalls Parse(string output) => new(null, [new ToolCall(NewId(), name, output)]);

    internal override int CallsStart(string text) => 0;

    internal override int HoldBack(string text) => 0;

    internal override List<PartialCall> PartialCalls(string calls) => [new PartialCall(name, calls, false)];
}

/// <summary>A "required" tool choice's forced output: a JSON list of {"name", "parameters"}.</summary>
internal sealed class RequiredToolParser : ToolCallParser
{
    public override bool Forced => true;

    public override ParsedToolCalls Parse(string output)
    {
        try
        {
            if (JsonNode.Parse(output) is JsonArray list && list.Select(n => JsonCalls.FromNode(n, this)).ToList() is var calls
                && calls.All(c => c != null))
                return new(null, calls!);
        }
        catch (JsonException)
        {
        }
        // Cut short by max_tokens: the calls that were completed before the cut, else the text as it is.
        var complete = JsonScan.Objects(output.TrimStart().TrimStart('[')).TakeWhile(c => c is { Complete: true, Name: not null })
            .Select(c => new ToolCall(NewId(), c.Name!, c.Arguments)).ToList();
        return complete.Count > 0 ? new(null, complete) : new(output, []);
    }

    internal override int CallsStart(string text) => 0;

    internal override int HoldBack(string text) => 0;

    internal override List<PartialCall> PartialCalls(string calls) => JsonScan.Objects(calls);
}
