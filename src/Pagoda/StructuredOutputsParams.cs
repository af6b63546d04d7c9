namespace Pagoda;

/// <summary>
/// vLLM's structured outputs: the output must match exactly one of a JSON schema (as JSON text), any JSON object,
/// a regular expression, one of a list of strings, or a grammar (GBNF, or a Lark-style EBNF).
/// </summary>
public sealed record StructuredOutputsParams
{
    /// <summary>A JSON Schema, as JSON text.</summary>
    public string? Json { get; init; }

    /// <summary>Any JSON object (OpenAI's json_object mode).</summary>
    public bool JsonObject { get; init; }

    /// <summary>A regular expression the whole output matches.</summary>
    public string? Regex { get; init; }

    /// <summary>The output is exactly one of these.</summary>
    public IReadOnlyList<string>? Choice { get; init; }

    /// <summary>A GBNF (root ::= ...) or Lark-style (start: ...) grammar.</summary>
    public string? Grammar { get; init; }

    /// <summary>
    /// vLLM's disable_any_whitespace: JSON with no whitespace between tokens. Small models otherwise tend to spend
    /// their tokens on the whitespace JSON allows (at most 20 bytes a gap here).
    /// </summary>
    public bool DisableAnyWhitespace { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> unless exactly one constraint is set.</summary>
    public void Validate()
    {
        int set = (Json != null ? 1 : 0) + (JsonObject ? 1 : 0) + (Regex != null ? 1 : 0) + (Choice != null ? 1 : 0) + (Grammar != null ? 1 : 0);
        if (set != 1)
            throw new ArgumentException($"structured outputs need exactly one of json, json_object, regex, choice or grammar; got {set}.");
        if (Choice is { Count: 0 })
            throw new ArgumentException("structured outputs: choice must list at least one string.");
    }
}
