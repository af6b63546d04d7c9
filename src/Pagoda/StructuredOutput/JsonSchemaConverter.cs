using System.Text.Json;

namespace Pagoda.StructuredOutput;

/// <summary>
/// JSON Schema to grammar rules. Supported: type (one or a list, "null" included), properties, required,
/// additionalProperties, items, prefixItems, minItems, maxItems, enum, const, anyOf, oneOf (as anyOf),
/// allOf of one schema, $ref into the document ($defs, definitions, any JSON pointer, recursion allowed),
/// string pattern/format/minLength/maxLength, number and integer bounds (see <see cref="JsonNumbers"/>).
/// Annotations and unknown keywords are ignored; keywords that change validity but are not supported throw.
/// Each $ref target becomes one rule converted from a queue, so the converter recurses only along the
/// nesting of one schema (bounded by <see cref="GrammarLimits.MaxNesting"/>), never along $ref chains.
/// </summary>
internal sealed partial class JsonSchemaConverter
{
    private static readonly HashSet<string> Unsupported =
    [
        "multipleOf", "patternProperties", "propertyNames", "dependencies", "dependentRequired", "dependentSchemas",
        "if", "then", "else", "not", "contains", "minContains", "maxContains", "minProperties", "maxProperties",
        "unevaluatedProperties", "unevaluatedItems", "additionalItems", "$dynamicRef", "$recursiveRef",
    ];

    private static readonly HashSet<string> Annotations =
    [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "$anchor", "contentMediaType", "contentEncoding", "$defs", "definitions", "discriminator",
    ];

    private readonly JsonGrammar _j;
    private readonly GrammarBuilder _b;
    private readonly JsonElement _root;
    private readonly Dictionary<string, int> _refs = new(StringComparer.Ordinal);
    private readonly Queue<(int Rule, JsonElement Schema)> _pending = new();

    private JsonSchemaConverter(JsonGrammar j, JsonElement root)
    {
        _j = j;
        _b = j.B;
        _root = root;
    }

    /// <summary>Converts a schema document; returns the root rule.</summary>
    public static int Convert(JsonGrammar j, JsonElement root)
    {
        var c = new JsonSchemaConverter(j, root);
        int rule = c._b.Declare("root");
        c._refs["#"] = rule;
        c._pending.Enqueue((rule, root));
        while (c._pending.Count > 0)
        {
            var (r, schema) = c._pending.Dequeue();
            c._b.Budget.CheckTime();
            c._b.Define(r, X.Seq(c.Schema(schema, 0)));
        }
        return rule;
    }

    private Expr Schema(JsonElement s, int depth)
    {
        _b.Budget.CheckNesting(depth);
        if (s.ValueKind == JsonValueKind.True) return _j.AnyValue(_b.Budget.Limits.AnyJsonDepth);
        if (s.ValueKind == JsonValueKind.False) return Expr.Never;
        if (s.ValueKind != JsonValueKind.Object) throw new GrammarException("a schema must be an object or a boolean");
        var validity = new List<string>();
        foreach (var p in s.EnumerateObject())
        {
            if (Unsupported.Contains(p.Name)) throw new GrammarException($"JSON Schema keyword '{p.Name}' is not supported");
            if (p.Name == "uniqueItems" && p.Value.ValueKind == JsonValueKind.True)
                throw new GrammarException("JSON Schema keyword 'uniqueItems' is not supported");
            if (!Annotations.Contains(p.Name) && !p.Name.StartsWith("x-", StringComparison.Ordinal)) validity.Add(p.Name);
        }
        if (s.TryGetProperty("$ref", out var reference))
        {
            OnlyKeyword(validity, "$ref");
            return X.Ref(RefRule(reference.GetString() ?? ""));
        }
        if (s.TryGetProperty("allOf", out var allOf))
        {
            OnlyKeyword(validity, "allOf");
            if (allOf.ValueKind != JsonValueKind.Array || allOf.GetArrayLength() != 1)
                throw new GrammarException("allOf is supported only with exactly one schema");
            return Schema(allOf[0], depth + 1);
        }
        foreach (var key in (string[])["anyOf", "oneOf"])
        {
            if (!s.TryGetProperty(key, out var branches)) continue;
            OnlyKeyword(validity, key);
            if (branches.ValueKind != JsonValueKind.Array || branches.GetArrayLength() == 0)
                throw new GrammarException($"{key} must be a non-empty array");
            return X.Alt(branches.EnumerateArray().Select(b => Wrap(b, depth + 1, key)).ToArray());
        }
        if (s.TryGetProperty("const", out var constant)) return _j.Literal(constant);
        if (s.TryGetProperty("enum", out var values)) return Enum(values);

        var types = Types(s);
        if (types.Count == 0) return _j.AnyValue(_b.Budget.Limits.AnyJsonDepth);
        return X.Alt(types.Select(t => TypeExpr(t, s, depth)).ToArray());
    }

    private static void OnlyKeyword(List<string> validity, string keyword)
    {
        var others = validity.Where(v => v != keyword && v != "nullable").ToList();
        if (others.Count > 0)
            throw new GrammarException($"'{keyword}' combined with {string.Join(", ", others)} is not supported");
    }

    private Expr Enum(JsonElement values)
    {
        if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            throw new GrammarException("enum must be a non-empty array");
        if (values.GetArrayLength() > _b.Budget.Limits.MaxEnumEntries)
            throw new GrammarException($"enum has more than {_b.Budget.Limits.MaxEnumEntries} entries");
        return X.Alt(values.EnumerateArray().Select(_j.Literal).ToArray());
    }

    // The types a schema allows: its "type" (string or list, plus "nullable": true), or the type its other
    // keywords imply, or none (any value).
    private static List<string> Types(JsonElement s)
    {
        var types = new List<string>();
        if (s.TryGetProperty("type", out var t))
        {
            if (t.ValueKind == JsonValueKind.String) types.Add(t.GetString()!);
            else if (t.ValueKind == JsonValueKind.Array) types.AddRange(t.EnumerateArray().Select(e => e.GetString() ?? ""));
            else throw new GrammarException("'type' must be a string or an array of strings");
        }
        else if (Has(s, "properties", "required", "additionalProperties")) types.Add("object");
        else if (Has(s, "items", "prefixItems", "minItems", "maxItems")) types.Add("array");
        else if (Has(s, "pattern", "format", "minLength", "maxLength")) types.Add("string");
        else if (Has(s, "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")) types.Add("number");
        if (types.Count > 0 && s.TryGetProperty("nullable", out var n) && n.ValueKind == JsonValueKind.True && !types.Contains("null"))
            types.Add("null");
        return types.Distinct().ToList();
    }

    private static bool Has(JsonElement s, params string[] keys) => keys.Any(k => s.TryGetProperty(k, out _));

    private Expr TypeExpr(string type, JsonElement s, int depth) => type switch
    {
        "string" => StringExpr(s),
        "integer" => IntegerExpr(s),
        "number" => NumberExpr(s),
        "boolean" => JsonGrammar.Boolean,
        "null" => JsonGrammar.Null,
        "object" => ObjectExpr(s, depth),
        "array" => ArrayExpr(s, depth),
        _ => throw new GrammarException($"unknown JSON Schema type '{type}'"),
    };

    /// <summary>A sub-schema as its own rule when it is a container (small rules keep DFAs and masks reusable).</summary>
    private Expr Wrap(JsonElement s, int depth, string name)
    {
        var e = Schema(s, depth);
        return e is SeqExpr or AltExpr or RepeatExpr ? X.Ref(_b.Add(name, e)) : e;
    }

    private int RefRule(string reference)
    {
        if (_refs.TryGetValue(reference, out int rule)) return rule;
        if (!reference.StartsWith('#')) throw new GrammarException($"$ref '{reference}': only references inside the schema (#/...) are supported");
        var target = _root;
        foreach (var raw in reference[1..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            string part = Uri.UnescapeDataString(raw).Replace("~1", "/").Replace("~0", "~");
            if (target.ValueKind == JsonValueKind.Object && target.TryGetProperty(part, out var next)) target = next;
            else if (target.ValueKind == JsonValueKind.Array && int.TryParse(part, out int i) && i >= 0 && i < target.GetArrayLength()) target = target[i];
            else throw new GrammarException($"$ref '{reference}' does not resolve");
        }
        rule = _b.Declare("ref " + reference);
        _refs[reference] = rule;
        _pending.Enqueue((rule, target));
        return rule;
    }
}
