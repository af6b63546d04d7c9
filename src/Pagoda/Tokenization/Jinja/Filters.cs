using System.Globalization;
using System.Text.RegularExpressions;

namespace Pagoda.Tokenization.Jinja;

// The built-in filters (value | name(args)) that chat templates use.
internal static partial class Filters
{
    // Checked when parsing so an unknown filter fails at load time, as in Jinja.
    public static readonly HashSet<string> Names =
    [
        "length", "count", "tojson", "trim", "upper", "lower", "capitalize", "title", "string", "safe", "escape", "e",
        "join", "first", "last", "list", "items", "default", "d", "int", "float", "abs", "round", "replace", "reverse",
        "indent", "format", "attr", "map", "select", "reject", "selectattr", "rejectattr", "unique", "sort", "sum", "min", "max",
    ];

    private static object? Arg(List<object?> a, Dictionary<string, object?> k, int i, string name, object? dflt = null) =>
        i >= 0 && i < a.Count ? a[i] : k.TryGetValue(name, out var v) ? v : dflt;

    private static bool Flag(List<object?> a, Dictionary<string, object?> k, int i, string name) =>
        Values.Truthy(Arg(a, k, i, name, false));

    public static object? Apply(Interpreter it, string name, object? v, List<object?> a, Dictionary<string, object?> k)
    {
        switch (name)
        {
            case "length" or "count":
                return v switch
                {
                    string s => (long)Interpreter.Chars(s).Count,
                    IList<object?> l => (long)l.Count,
                    JinjaDict d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new JinjaError($"object of type '{Values.TypeName(v)}' has no len()"),
                };
            case "tojson":
                return ToJson(v, a, k);
            case "trim": return Methods.Strip(Values.Str(v), Arg(a, k, 0, "chars"), true, true);
            case "upper": return Values.Str(v).ToUpperInvariant();
            case "lower": return Values.Str(v).ToLowerInvariant();
            case "capitalize": return Methods.Capitalize(Values.Str(v));
            case "title": return JinjaTitle(Values.Str(v));
            case "string": return Values.Str(v);
            case "safe": return v;
            case "escape" or "e":
                return Values.Str(v).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;")
                    .Replace("\"", "&#34;").Replace("'", "&#39;");
            case "join":
                var sep = Values.Str(Arg(a, k, 0, "d", ""));
                var attr = Arg(a, k, 1, "attribute") as string;
                return string.Join(sep, Interpreter.Iterate(v).Select(x => Values.Str(attr == null ? x : Attribute(x, attr))));
            case "first":
                var firstItems = Interpreter.Iterate(v);
                return firstItems.Count > 0 ? firstItems[0] : new Undefined("No first item, sequence was empty.");
            case "last":
                var lastItems = Interpreter.Iterate(v);
                return lastItems.Count > 0 ? lastItems[^1] : new Undefined("No last item, sequence was empty.");
            case "list": return Interpreter.Iterate(v).ToList();
            case "items":
                if (v is Undefined) return new List<object?>();
                if (v is not JinjaDict dict) throw new JinjaError($"can only get item pairs from a mapping, not {Values.TypeName(v)}");
                return dict.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList();
            case "default" or "d":
                var useDefault = v is Undefined || (Flag(a, k, 1, "boolean") && !Values.Truthy(v));
                return useDefault ? Arg(a, k, 0, "default_value", "") : v;
            case "int": return ToInt(v, Arg(a, k, 0, "default", 0L), Values.ToLong(Arg(a, k, 1, "base", 10L)));
            case "float": return ToFloat(v, Arg(a, k, 0, "default", 0.0));
            case "abs":
                return v switch
                {
                    long l => (object)Math.Abs(l),
                    double d => Math.Abs(d),
                    bool b => b ? 1L : 0L,
                    _ => throw new JinjaError($"bad operand type for abs(): '{Values.TypeName(v)}'"),
                };
            case "round":
                var digits = (int)Values.ToLong(Arg(a, k, 0, "precision", 0L));
                var method = Arg(a, k, 1, "method", "common") as string;
                var x = Values.ToDouble(v);
                var p = Math.Pow(10, digits);
                return method switch
                {
                    "ceil" => Math.Ceiling(x * p) / p,
                    "floor" => Math.Floor(x * p) / p,
                    _ => Math.Round(x, digits, MidpointRounding.ToEven),
                };
            case "replace":
                var count = Arg(a, k, 2, "count");
                var rargs = new List<object?> { Values.Str(Arg(a, k, 0, "old")), Values.Str(Arg(a, k, 1, "new")) };
                if (count != null) rargs.Add(count);
                return Methods.ForString(Values.Str(v), "replace")!.Invoke(rargs, []);
            case "reverse":
                return v switch
                {
                    string s => string.Concat(Interpreter.Chars(s).Cast<string>().Reverse()),
                    _ => Enumerable.Reverse(Interpreter.Iterate(v)).ToList(),
                };
            case "indent": return Indent(Values.Str(v), Arg(a, k, 0, "width", 4L), Flag(a, k, 1, "first"), Flag(a, k, 2, "blank"));
            case "format":
                return Format.Percent(Values.Str(v), a.Count == 1 ? a[0] : a.ToArray());
            case "attr": return Access.GetAttr(v, Values.Str(Arg(a, k, 0, "name")));
            case "map": return Map(it, v, a, k);
            case "select" or "reject":
                return Interpreter.Iterate(v).Where(x => Check(it, x, a, 0) == (name == "select")).ToList();
            case "selectattr" or "rejectattr":
                var an = Values.Str(Arg(a, k, 0, "attribute"));
                return Interpreter.Iterate(v).Where(x => Check(it, Attribute(x, an), a, 1) == (name == "selectattr")).ToList();
            case "unique": return Unique(v, Flag(a, k, 0, "case_sensitive"), Arg(a, k, 1, "attribute") as string);
            case "sort": return Sort(v, Flag(a, k, 0, "reverse"), Flag(a, k, 1, "case_sensitive"), Arg(a, k, 2, "attribute") as string);
            case "sum":
                var sattr = Arg(a, k, 0, "attribute") as string;
                object? total = Arg(a, k, 1, "start", 0L);
                foreach (var item in Interpreter.Iterate(v)) total = Operators.Binary("+", total, sattr == null ? item : Attribute(item, sattr));
                return total;
            case "min" or "max":
                var mitems = Interpreter.Iterate(v);
                if (mitems.Count == 0) return new Undefined($"No aggregated item, sequence was empty.");
                var sorted = Sort(mitems, false, Flag(a, k, 0, "case_sensitive"), Arg(a, k, 1, "attribute") as string);
                return name == "min" ? sorted[0] : sorted[^1];
            default:
                throw new JinjaError($"no filter named '{name}'");
        }
    }

    private static string ToJson(object? v, List<object?> a, Dictionary<string, object?> k)
    {
        var indent = Arg(a, k, 0, "indent");
        var seps = Arg(a, k, -1, "separators") as IList<object?>;
        return new Json
        {
            Indent = indent is long n ? (int)n : indent is string ? throw new JinjaError("string indent is not supported") : null,
            EnsureAscii = Values.Truthy(Arg(a, k, -1, "ensure_ascii", false)),
            SortKeys = Values.Truthy(Arg(a, k, -1, "sort_keys", false)),
            ItemSeparator = seps is { Count: 2 } ? Values.Str(seps[0]) : null,
            KeySeparator = seps is { Count: 2 } ? Values.Str(seps[1]) : ": ",
        }.Serialize(v);
    }

    // Jinja's title filter capitalises after whitespace, '-', and opening brackets (unlike Python's str.title).
    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBoundary();

    private static string JinjaTitle(string s) =>
        string.Concat(WordBoundary().Split(s).Where(p => p.Length > 0).Select(p => char.ToUpperInvariant(p[0]) + p[1..].ToLowerInvariant()));

    private static object? ToInt(object? v, object? dflt, long numBase)
    {
        switch (v)
        {
            case long or bool: return Values.ToLong(v);
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : dflt;
            case string s:
                s = s.Trim().Replace("_", "");
                try { return Convert.ToInt64(s, (int)numBase); } catch (FormatException) { } catch (ArgumentException) { } catch (OverflowException) { }
                if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && double.IsFinite(f)) return (long)Math.Truncate(f);
                return dflt;
            default: return dflt;
        }
    }

    private static object? ToFloat(object? v, object? dflt) => v switch
    {
        long or bool or double => Values.ToDouble(v),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) => f,
        _ => dflt,
    };

    private static string Indent(string s, object? width, bool first, bool blank)
    {
        var pad = width is string ws ? ws : new string(' ', (int)Values.ToLong(width));
        var lines = (s + "\n").Split('\n').SkipLast(1).ToList(); // mirrors Jinja appending "\n" before splitlines()
        string rv;
        if (blank) rv = string.Join("\n" + pad, lines);
        else
        {
            rv = lines[0];
            if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? pad + l : l));
        }
        return first ? pad + rv : rv;
    }

    // Item-then-attribute lookup of a dotted path such as "function.name", as Jinja's attrgetter does.
    public static object? Attribute(object? obj, string path)
    {
        foreach (var part in path.Split('.'))
            obj = Access.GetItem(obj, long.TryParse(part, out var i) ? i : part);
        return obj;
    }

    private static object? Map(Interpreter it, object? v, List<object?> a, Dictionary<string, object?> k)
    {
        var items = Interpreter.Iterate(v);
        if (k.TryGetValue("attribute", out var attr))
        {
            var path = Values.Str(attr);
            k.TryGetValue("default", out var dflt);
            return items.Select(x =>
            {
                var r = Attribute(x, path);
                return r is Undefined && k.ContainsKey("default") ? dflt : r;
            }).ToList();
        }
        if (a.Count == 0) throw new JinjaError("map requires a filter name or attribute=");
        var filter = Values.Str(a[0]);
        var rest = a.Skip(1).ToList();
        return items.Select(x => Apply(it, filter, x, rest.ToList(), new Dictionary<string, object?>(k))).ToList();
    }

    // select/reject: with no test name, truthiness decides.
    private static bool Check(Interpreter it, object? value, List<object?> a, int testAt)
    {
        if (a.Count <= testAt) return Values.Truthy(value);
        return Tests.Apply(it, Values.Str(a[testAt]), value, a.Skip(testAt + 1).ToList());
    }

    private static object? SortKey(object? x, bool caseSensitive, string? attribute)
    {
        if (attribute != null) x = Attribute(x, attribute);
        return !caseSensitive && x is string s ? s.ToLowerInvariant() : x;
    }

    private static List<object?> Unique(object? v, bool caseSensitive, string? attribute)
    {
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var x in Interpreter.Iterate(v))
        {
            var key = SortKey(x, caseSensitive, attribute);
            if (seen.Any(s => Values.Equal(s, key))) continue;
            seen.Add(key);
            result.Add(x);
        }
        return result;
    }

    private static List<object?> Sort(object? v, bool reverse, bool caseSensitive, string? attribute)
    {
        var keyed = Interpreter.Iterate(v).Select(x => (Key: SortKey(x, caseSensitive, attribute), Item: x)).ToList();
        int Cmp((object? Key, object? Item) p, (object? Key, object? Item) q) =>
            Values.Compare(p.Key, q.Key)
            ?? throw new JinjaError($"'<' not supported between instances of '{Values.TypeName(p.Key)}' and '{Values.TypeName(q.Key)}'");
        // OrderBy is stable, like Python's sort.
        var ordered = reverse
            ? keyed.OrderByDescending(p => p, Comparer<(object?, object?)>.Create(Cmp))
            : keyed.OrderBy(p => p, Comparer<(object?, object?)>.Create(Cmp));
        return ordered.Select(p => p.Item).ToList();
    }
}
