using System.Text.Json;

namespace Pagoda;

/// <summary>
/// vLLM's JSON-valued flags (`--kv-events-config`, `--kv-transfer-config`): one JSON object read key by key into a
/// record, every mistake an <see cref="ArgumentException"/> of one line that names the flag.
/// </summary>
internal static class JsonFlag
{
    /// <summary>
    /// Reads <paramref name="json"/> into <paramref name="config"/> through <paramref name="with"/>, one key at a time,
    /// after <paramref name="required"/> has checked the object as a whole.
    /// </summary>
    public static T Read<T>(string flag, string json, string example, T config, Func<T, string, JsonElement, T> with,
        Action<JsonElement>? required = null)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{flag} is not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{flag} must be a JSON object, such as '{example}'.");
            required?.Invoke(root);
            foreach (var p in root.EnumerateObject())
                config = with(config, p.Name, p.Value);
            return config;
        }
    }

    public static bool Bool(string flag, string key, JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new ArgumentException($"{flag}: {key} must be true or false, got {v.GetRawText()}."),
    };

    public static string? String(string flag, string key, JsonElement v, bool nullable) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Null when nullable => null,
        _ => throw new ArgumentException($"{flag}: {key} must be a string{(nullable ? " or null" : "")}, got {v.GetRawText()}."),
    };

    public static int Int(string flag, string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n)
            ? n
            : throw new ArgumentException($"{flag}: {key} must be an integer, got {v.GetRawText()}.");
}
