using System.Text.Json;

namespace Pagoda.StructuredOutput;

/// <summary>The per-type parts of <see cref="JsonSchemaConverter"/>: objects, arrays, strings, numbers.</summary>
internal sealed partial class JsonSchemaConverter
{
    // Objects with more optional properties than this chain their tails through rules, keeping the
    // automaton linear in the property count instead of quadratic.
    private const int InlineTailLimit = 6;

    /// <summary>
    /// Properties in schema order (required and optional alike, as xgrammar does), then extra members
    /// when additionalProperties allows them. additionalProperties absent means false when properties are
    /// declared (strict, like OpenAI strict mode and xgrammar) and any member otherwise.
    /// </summary>
    private Expr ObjectExpr(JsonElement s, int depth)
    {
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (s.TryGetProperty("required", out var req) && req.ValueKind == JsonValueKind.Array)
            foreach (var r in req.EnumerateArray()) required.Add(r.GetString() ?? "");
        var members = new List<(Expr Member, bool Required)>();
        bool hasProperties = s.TryGetProperty("properties", out var props) && props.ValueKind == JsonValueKind.Object;
        var declared = new HashSet<string>(StringComparer.Ordinal);
        if (hasProperties)
        {
            foreach (var p in props.EnumerateObject())
            {
                declared.Add(p.Name);
                var value = Wrap(p.Value, depth + 1, "property " + p.Name);
                members.Add((X.Seq(_j.Key(p.Name), _j.Ws, X.Byte(':'), _j.Ws, value), required.Contains(p.Name)));
            }
        }
        foreach (var name in required.Where(r => !declared.Contains(r)))
            members.Add((X.Seq(_j.Key(name), _j.Ws, X.Byte(':'), _j.Ws, _j.AnyValue(_b.Budget.Limits.AnyJsonDepth)), true));

        Expr? extra = null;
        bool hasAdditional = s.TryGetProperty("additionalProperties", out var additional);
        if (hasAdditional ? additional.ValueKind != JsonValueKind.False : !hasProperties)
        {
            var value = !hasAdditional || additional.ValueKind == JsonValueKind.True
                ? _j.AnyValue(_b.Budget.Limits.AnyJsonDepth)
                : Wrap(additional, depth + 1, "additionalProperties");
            var key = declared.Count == 0 ? _j.AnyString : X.Ref(_b.Add("other key", _j.StringExcept(declared)));
            extra = X.Seq(key, _j.Ws, X.Byte(':'), _j.Ws, value);
        }
        return X.Seq(X.Byte('{'), _j.Ws, Members(members, extra), X.Byte('}'));
    }

    // The members then trailing whitespace, or nothing when every member is optional. tails[i] is what may
    // follow once some member before i was written: each later member with its leading comma.
    private Expr Members(List<(Expr Member, bool Required)> members, Expr? extra)
    {
        int n = members.Count;
        bool useRules = members.Count(m => !m.Required) > InlineTailLimit;
        var tails = new Expr[n + 1];
        tails[n] = extra is null ? Expr.Empty : X.Star(X.Seq(_j.Comma, extra));
        for (int i = n - 1; i >= 0; i--)
        {
            var item = X.Seq(_j.Comma, members[i].Member);
            var tail = X.Seq(members[i].Required ? item : X.Opt(item), tails[i + 1]);
            tails[i] = useRules ? X.Ref(_b.Add("members", tail)) : tail;
        }
        int firstRequired = members.FindIndex(m => m.Required);
        var firsts = new List<Expr>();
        for (int k = 0; k < n && (firstRequired < 0 || k <= firstRequired); k++)
            firsts.Add(X.Seq(members[k].Member, tails[k + 1]));
        if (firstRequired < 0 && extra is not null) firsts.Add(X.Seq(extra, tails[n]));
        var body = X.Seq(X.Alt(firsts.ToArray()), _j.Ws);
        return firstRequired < 0 ? X.Opt(body) : body;
    }

    /// <summary>prefixItems, then items (a schema, or false for none), counted by minItems/maxItems.</summary>
    private Expr ArrayExpr(JsonElement s, int depth)
    {
        int min = Count(s, "minItems") ?? 0;
        int max = Count(s, "maxItems") ?? -1;
        var prefix = new List<Expr>();
        if (s.TryGetProperty("prefixItems", out var pi) && pi.ValueKind == JsonValueKind.Array)
            foreach (var item in pi.EnumerateArray()) prefix.Add(X.Ref(_b.Add("prefixItem", Schema(item, depth + 1))));
        Expr? rest;
        if (!s.TryGetProperty("items", out var items)) rest = _j.AnyValue(_b.Budget.Limits.AnyJsonDepth);
        else if (items.ValueKind == JsonValueKind.False) rest = null;
        else if (items.ValueKind == JsonValueKind.Array) throw new GrammarException("array-form 'items' is not supported; use prefixItems");
        else rest = X.Ref(_b.Add("item", Schema(items, depth + 1)));
        if (rest is null) max = max < 0 ? prefix.Count : Math.Min(max, prefix.Count);
        if (max >= 0 && min > max) return Expr.Never;
        _b.Budget.CheckRepeat(Math.Max(min, max));
        if (max >= 0 && prefix.Count > max) prefix.RemoveRange(max, prefix.Count - max);
        _b.Budget.CheckNesting(prefix.Count);

        // Elements after the prefix repeat one rule; the prefix is nested optionals built from the end. At
        // least one element is built here; an empty array is the outer option, so that "[" and "]" are
        // separated by one whitespace gap, not two.
        if (max == 0 || (prefix.Count == 0 && rest is null)) return X.Seq(X.Byte('['), _j.Ws, X.Byte(']'));
        int atLeast = Math.Max(min, 1);
        Expr elements = Expr.Empty;
        if (rest is not null && (max < 0 || max > prefix.Count))
        {
            int lo = Math.Max(0, atLeast - prefix.Count), hi = max < 0 ? -1 : max - prefix.Count;
            var more = X.Seq(_j.Comma, rest);
            elements = prefix.Count > 0
                ? X.Rep(more, lo, hi)
                : X.Seq(rest, X.Rep(more, Math.Max(0, lo - 1), hi < 0 ? -1 : hi - 1));
        }
        for (int j = prefix.Count - 1; j >= 0; j--)
        {
            var piece = X.Seq(j == 0 ? Expr.Empty : _j.Comma, prefix[j], elements);
            elements = j < atLeast ? piece : X.Opt(piece);
        }
        var body = X.Seq(elements, _j.Ws);
        return X.Seq(X.Byte('['), _j.Ws, min == 0 ? X.Opt(body) : body, X.Byte(']'));
    }

    private int? Count(JsonElement s, string key)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n) || n < 0)
            throw new GrammarException($"'{key}' must be a non-negative integer");
        if (n > _b.Budget.Limits.MaxRepeat)
            throw new GrammarException($"'{key}' of {n} exceeds the limit of {_b.Budget.Limits.MaxRepeat}");
        return (int)n;
    }

    private Expr StringExpr(JsonElement s)
    {
        int min = Count(s, "minLength") ?? 0;
        int max = Count(s, "maxLength") ?? -1;
        bool lengths = min > 0 || max >= 0;
        string? pattern = s.TryGetProperty("pattern", out var p) ? p.GetString() : null;
        string? format = s.TryGetProperty("format", out var f) ? JsonFormats.Pattern(f.GetString() ?? "") : null;
        if (pattern is not null && (lengths || format is not null))
            throw new GrammarException("'pattern' combined with minLength/maxLength or a format is not supported");
        if (format is not null && lengths)
            throw new GrammarException("'format' combined with minLength/maxLength is not supported");
        string? regex = pattern ?? format;
        if (regex is null) return lengths ? _j.QuotedString(min, max) : _j.AnyString;
        var body = RegexParser.Parse(regex, _b.Budget, JsonGrammar.UnescapedChars);
        return X.Seq(X.Byte('"'), body, X.Byte('"'));
    }

    private Expr IntegerExpr(JsonElement s)
    {
        var (lo, loEx, hi, hiEx) = Bounds(s);
        long? a = lo is double l ? Clamp(loEx ? Math.Floor(l) + 1 : Math.Ceiling(l)) : null;
        long? b = hi is double h ? Clamp(hiEx ? Math.Ceiling(h) - 1 : Math.Floor(h)) : null;
        return a is null && b is null ? _j.AnyInteger : JsonNumbers.Integer(a, b);
    }

    private static long Clamp(double v) => v > JsonNumbers.Limit ? JsonNumbers.Limit : v < -JsonNumbers.Limit ? -JsonNumbers.Limit : (long)v;

    private Expr NumberExpr(JsonElement s)
    {
        var (lo, loEx, hi, hiEx) = Bounds(s);
        return lo is null && hi is null ? _j.AnyNumber : JsonNumbers.Number(lo, hi, loEx, hiEx);
    }

    // minimum/maximum with exclusiveMinimum/exclusiveMaximum as numbers (draft 6+) or booleans (draft 4).
    private static (double? Lo, bool LoEx, double? Hi, bool HiEx) Bounds(JsonElement s)
    {
        double? lo = Num(s, "minimum"), hi = Num(s, "maximum");
        bool loEx = false, hiEx = false;
        if (s.TryGetProperty("exclusiveMinimum", out var em))
        {
            if (em.ValueKind == JsonValueKind.True) loEx = true;
            else if (em.ValueKind == JsonValueKind.Number && (lo is null || em.GetDouble() >= lo)) { lo = em.GetDouble(); loEx = true; }
        }
        if (s.TryGetProperty("exclusiveMaximum", out var ex))
        {
            if (ex.ValueKind == JsonValueKind.True) hiEx = true;
            else if (ex.ValueKind == JsonValueKind.Number && (hi is null || ex.GetDouble() <= hi)) { hi = ex.GetDouble(); hiEx = true; }
        }
        return (lo, loEx, hi, hiEx);
    }

    private static double? Num(JsonElement s, string key)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new GrammarException($"'{key}' must be a number");
        return v.GetDouble();
    }
}
