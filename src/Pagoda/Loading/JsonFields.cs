using System.Text.Json;

namespace Pagoda.Loading;

/// <summary>Reads a JSON file into a root object, turning parse errors into <see cref="ModelLoadException"/>.</summary>
public static class JsonFile
{
    /// <summary>Parses <paramref name="path"/> and requires a JSON object at the root.</summary>
    public static JsonElement ReadObject(string path)
    {
        if (!File.Exists(path))
            throw new ModelLoadException(path, "file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path),
                new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException(path, "expected a JSON object at the top level");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, $"not valid JSON ({e.Message})");
        }
    }
}

/// <summary>Typed, null-tolerant access to one JSON object's fields; wrong types name the file and key.</summary>
public sealed class JsonFields(string path, JsonElement obj)
{
    /// <summary>The file these fields came from.</summary>
    public string Path { get; } = path;

    private JsonElement? Get(string key) =>
        obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private ModelLoadException Wrong(string key, string expected) =>
        new(Path, $"'{key}' must be {expected}");

    /// <summary>A string field, or null when absent.</summary>
    public string? String(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(key, "a string")
        : null;

    /// <summary>An integer field, or null when absent.</summary>
    public int? Int(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Wrong(key, "an integer")
        : null;

    /// <summary>An integer field that must be present and positive.</summary>
    public int RequiredInt(string key) =>
        Get(key) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out int i) && i > 0 ? i : throw Wrong(key, "a positive integer");

    /// <summary>A number field, or null when absent.</summary>
    public double? Double(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Wrong(key, "a number")
        : null;

    /// <summary>A boolean field, or null when absent.</summary>
    public bool? Bool(string key) => Get(key) is { } v
        ? v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(key, "true or false"),
        }
        : null;

    /// <summary>A nested object, or null when absent.</summary>
    public JsonFields? Object(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Object ? new JsonFields(Path, v) : throw Wrong(key, "an object")
        : null;

    /// <summary>The first string of a string array (e.g. `architectures`).</summary>
    public string? FirstString(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 && v[0].ValueKind == JsonValueKind.String
            ? v[0].GetString() : throw Wrong(key, "a non-empty list of strings")
        : null;

    /// <summary>An integer or a list of integers (e.g. `eos_token_id`), empty when absent.</summary>
    public IReadOnlyList<int> IntOrIntList(string key)
    {
        if (Get(key) is not { } v)
            return [];
        if (v.ValueKind == JsonValueKind.Number)
            return [Int(key)!.Value];
        if (v.ValueKind != JsonValueKind.Array)
            throw Wrong(key, "an integer or a list of integers");
        return v.EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Wrong(key, "a list of integers"))
            .ToList();
    }

    /// <summary>Whether the key is present at all, null included (some configs treat absent and null differently).</summary>
    public bool Has(string key) => obj.TryGetProperty(key, out _);

    /// <summary>A list of numbers (e.g. longrope's `short_factor`), or null when absent.</summary>
    public IReadOnlyList<double>? DoubleList(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw Wrong(key, "a list of numbers")).ToList()
            : throw Wrong(key, "a list of numbers")
        : null;

    /// <summary>A list of strings (e.g. `layer_types`), or null when absent.</summary>
    public IReadOnlyList<string>? StringList(string key) => Get(key) is { } v
        ? v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong(key, "a list of strings")).ToList()
            : throw Wrong(key, "a list of strings")
        : null;
}
