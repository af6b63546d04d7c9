using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>An invalid OpenAI request: becomes a 400 with OpenAI's error body.</summary>
public sealed class OpenAiRequestException(string message, string? param = null) : ArgumentException(message, param)
{
    /// <summary>The offending field, when one is to blame.</summary>
    public string? Param { get; } = param;

    /// <summary>The message alone: clients read (and match) it, so no "(Parameter ...)" is appended.</summary>
    public override string Message { get; } = message;
}

/// <summary>Typed reads of a request body's fields; a wrong type names the field.</summary>
internal sealed class RequestFields(JsonObject body)
{
    public JsonObject Body { get; } = body;

    public bool Has(string key) => Body[key] is not null;

    /// <summary>stream_options.include_usage.</summary>
    public static bool IncludeUsage(JsonObject body) =>
        body["stream_options"] is JsonObject so && so["include_usage"] is JsonValue iu && iu.TryGetValue(out bool b) && b;

    private static OpenAiRequestException Wrong(string key, string expected) => new($"'{key}' must be {expected}.", key);

    public double? Double(string key) => Body[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && double.IsFinite(v.GetValue<double>()) => v.GetValue<double>(),
        _ => throw Wrong(key, "a number"),
    };

    public int? Int(string key) => Body[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out int i) => i,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
        _ => throw Wrong(key, "an integer"),
    };

    public long? Long(string key) => Body[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long l) => l,
        _ => throw Wrong(key, "an integer"),
    };

    public bool? Bool(string key) => Body[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw Wrong(key, "a boolean"),
    };

    public string? String(string key) => Body[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw Wrong(key, "a string"),
    };

    /// <summary>A string or a list of strings (e.g. `stop`).</summary>
    public IReadOnlyList<string>? Strings(string key) => Body[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        JsonArray a => a.Select(e => e is JsonValue ev && ev.GetValueKind() == JsonValueKind.String ? ev.GetValue<string>() : throw Wrong(key, "a string or a list of strings")).ToList(),
        _ => throw Wrong(key, "a string or a list of strings"),
    };

    public IReadOnlyList<int>? Ints(string key) => Body[key] switch
    {
        null => null,
        JsonArray a => a.Select(e => e is JsonValue ev && ev.TryGetValue(out int i) ? i : throw Wrong(key, "a list of integers")).ToList(),
        _ => throw Wrong(key, "a list of integers"),
    };

    /// <summary>OpenAI's logit_bias: token ids as string keys, biases clamped to [-100, 100].</summary>
    public IReadOnlyDictionary<int, double>? LogitBias()
    {
        if (Body["logit_bias"] is null)
            return null;
        if (Body["logit_bias"] is not JsonObject o)
            throw Wrong("logit_bias", "an object mapping token ids to numbers");
        var result = new Dictionary<int, double>();
        foreach (var (k, v) in o)
        {
            if (!int.TryParse(k, out int id) || v is not JsonValue jv || jv.GetValueKind() != JsonValueKind.Number)
                throw Wrong("logit_bias", "an object mapping token ids to numbers");
            result[id] = Math.Clamp(jv.GetValue<double>(), -100, 100);
        }
        return result;
    }
}
