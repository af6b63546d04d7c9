using System.Text.Json;
using Pagoda.Loading;

namespace Pagoda.Tokenization;

/// <summary>
/// The parts of transformers' tokenizer_config.json that change encoding and decoding. Special
/// tokens may be written as a string or as an AddedToken object <c>{"content": ...}</c>.
/// </summary>
internal sealed record TokenizerConfig(
    string? BosToken, string? EosToken, string? PadToken, string? UnkToken,
    bool AddBosToken, bool AddEosToken, bool CleanUpTokenizationSpaces,
    string? TokenizerClass = null, bool? Legacy = null, bool? AddPrefixSpace = null)
{
    public static TokenizerConfig Empty { get; } = new(null, null, null, null, false, false, false);

    public static TokenizerConfig Load(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ModelLoadException(path, "top level is not a JSON object");
            return new TokenizerConfig(
                Token(root, "bos_token"), Token(root, "eos_token"), Token(root, "pad_token"), Token(root, "unk_token"),
                Bool(root, "add_bos_token"), Bool(root, "add_eos_token"), Bool(root, "clean_up_tokenization_spaces"),
                root.TryGetProperty("tokenizer_class", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null,
                OptionalBool(root, "legacy"), OptionalBool(root, "add_prefix_space"));
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, "malformed JSON: " + e.Message, e);
        }
        catch (IOException e)
        {
            throw new ModelLoadException(path, "cannot read tokenizer config: " + e.Message, e);
        }
    }

    private static string? Token(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    private static bool? OptionalBool(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static bool Bool(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
}
