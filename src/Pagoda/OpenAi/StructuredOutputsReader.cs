using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>
/// The ways a request asks for structured output, as vLLM reads them: OpenAI's response_format (json_object,
/// json_schema), vLLM's structured_outputs {json, regex, choice, grammar, json_object}, and the older guided_json,
/// guided_regex, guided_choice and guided_grammar. At most one of them per request.
/// </summary>
internal static class StructuredOutputsReader
{
    public static StructuredOutputsParams? Read(RequestFields f)
    {
        var body = f.Body;
        var found = new List<(string Field, StructuredOutputsParams Params)>();
        if (FromResponseFormat(body["response_format"]) is { } rf)
            found.Add(("response_format", rf));
        if (body["structured_outputs"] is { } so)
            found.Add(("structured_outputs", FromStructuredOutputs(so)));
        if (body["guided_json"] is { } gj)
            found.Add(("guided_json", new() { Json = Schema(gj, "guided_json") }));
        if (f.String("guided_regex") is { } gr)
            found.Add(("guided_regex", new() { Regex = gr }));
        if (body["guided_choice"] is { } gc)
            found.Add(("guided_choice", new() { Choice = Choices(gc, "guided_choice") }));
        if (f.String("guided_grammar") is { } gg)
            found.Add(("guided_grammar", new() { Grammar = gg }));
        if (found.Count > 1)
            throw new OpenAiRequestException($"Only one kind of structured output may be requested, got {string.Join(", ", found.Select(f => f.Field))}.", found[1].Field);
        return found.Count == 1 ? found[0].Params : null;
    }

    private static StructuredOutputsParams? FromResponseFormat(JsonNode? node)
    {
        const string Field = "response_format";
        if (node is null)
            return null;
        if (node is not JsonObject o || o["type"] is not JsonValue t || !t.TryGetValue(out string? type))
            throw new OpenAiRequestException("'response_format' must be an object with a string 'type'.", Field);
        return type switch
        {
            "text" => null,
            "json_object" => new() { JsonObject = true },
            "json_schema" when o["json_schema"] is JsonObject js && js["schema"] is { } schema => new() { Json = Schema(schema, Field) },
            "json_schema" => throw new OpenAiRequestException("response_format json_schema needs 'json_schema': {\"name\": ..., \"schema\": {...}}.", Field),
            _ => throw new OpenAiRequestException($"response_format '{type}' is not supported (supported: text, json_object, json_schema).", Field),
        };
    }

    private static StructuredOutputsParams FromStructuredOutputs(JsonNode node)
    {
        const string Field = "structured_outputs";
        if (node is not JsonObject o)
            throw new OpenAiRequestException("'structured_outputs' must be an object.", Field);
        foreach (var (key, value) in o)
        {
            if (value is not null && key is not ("json" or "regex" or "choice" or "grammar" or "json_object" or "disable_fallback"
                    or "disable_any_whitespace" or "disable_additional_properties"))
                throw new OpenAiRequestException($"structured_outputs.{key} is not supported (supported: json, regex, choice, grammar, json_object).", Field);
        }
        var fields = new RequestFields(o);
        var p = new StructuredOutputsParams
        {
            Json = o["json"] is { } j ? Schema(j, Field) : null,
            Regex = fields.String("regex"),
            Choice = o["choice"] is { } c ? Choices(c, Field) : null,
            Grammar = fields.String("grammar"),
            JsonObject = fields.Bool("json_object") ?? false,
            DisableAnyWhitespace = fields.Bool("disable_any_whitespace") ?? false,
        };
        try
        {
            p.Validate();
        }
        catch (ArgumentException e)
        {
            throw new OpenAiRequestException(e.Message, Field);
        }
        return p;
    }

    // A schema arrives as an object or as JSON text (vLLM takes both); it travels on as text.
    private static string Schema(JsonNode node, string field) => node switch
    {
        JsonObject o => o.ToJsonString(),
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new OpenAiRequestException($"'{field}' must hold a JSON schema object.", field),
    };

    private static List<string> Choices(JsonNode node, string field) =>
        node is JsonArray { Count: > 0 } a && a.All(e => e is JsonValue ev && ev.TryGetValue(out string? _))
            ? a.Select(e => e!.GetValue<string>()).ToList()
            : throw new OpenAiRequestException($"'{field}' must be a non-empty list of strings.", field);
}
