using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.Tokenization.Jinja;

// Runtime values are plain CLR objects so the interpreter stays small:
// null = none, Undefined, bool, long, double, string, List<object?> = list, object?[] = tuple,
// JinjaDict = dict, Namespace, JinjaCallable, LoopInfo.

// A missing variable, attribute or key: falsy, renders empty, fails on most operations.
internal sealed class Undefined(string? message)
{
    public static readonly Undefined Instance = new(null);

    // Why it is undefined, e.g. "'foo' is undefined"; raised when the value is misused.
    public string Describe() => message ?? "value is undefined";
}

// A runtime error without a line number yet; the interpreter adds the line of the expression.
internal sealed class JinjaError(string message) : Exception(message);

// Mutable attribute bag made by namespace(...); the only thing set a.b = ... can change.
internal sealed class Namespace
{
    public Dictionary<string, object?> Attrs { get; } = new();
}

// A function value: globals, bound methods and macros.
internal sealed class JinjaCallable(string name, Func<List<object?>, Dictionary<string, object?>, object?> body)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => body(args, kwargs);
}

// Insertion-ordered dict; numeric keys compare by value like Python (1 == 1.0 == True).
internal sealed class JinjaDict() : Dictionary<object, object?>(KeyComparer.Instance)
{
    // Dictionary<,> keeps insertion order as long as nothing is removed, and templates cannot remove.
    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();
        public new bool Equals(object? x, object? y) => Jinja.Values.Equal(x, y);
        public int GetHashCode(object o) => Jinja.Values.IsNumber(o) ? Jinja.Values.ToDouble(o).GetHashCode() : o.GetHashCode();
    }
}

internal static class Values
{
    public static object? FromJson(JsonNode? node)
    {
        switch (node)
        {
            case null: return null;
            case JsonObject obj:
                var d = new JinjaDict();
                foreach (var (k, v) in obj) d[k] = FromJson(v);
                return d;
            case JsonArray arr:
                var l = new List<object?>(arr.Count);
                foreach (var v in arr) l.Add(FromJson(v));
                return l;
            case JsonValue val:
                switch (val.GetValueKind())
                {
                    case JsonValueKind.String: return val.GetValue<string>();
                    case JsonValueKind.True: return true;
                    case JsonValueKind.False: return false;
                    case JsonValueKind.Null: return null;
                    case JsonValueKind.Number:
                        // Python's json.loads makes "1" an int and "1.0" a float; keep that distinction.
                        var text = val.ToJsonString();
                        if (text.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i))
                            return i;
                        return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
                }
                break;
        }
        throw new ArgumentException("unsupported JSON node " + node.GetType().Name);
    }

    // Converts a host value (JSON nodes, CLR primitives, dictionaries, sequences) into a runtime value.
    public static object? FromClr(object? value) => value switch
    {
        null => null,
        JsonNode n => FromJson(n),
        JsonElement e => FromJson(JsonSerializer.SerializeToNode(e)),
        string or bool or long or double or JinjaDict or Namespace or JinjaCallable or Undefined => value,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        IDictionary<string, object?> d => ToDict(d),
        System.Collections.IEnumerable e => e.Cast<object?>().Select(FromClr).ToList(),
        _ => throw new ArgumentException("unsupported variable type " + value.GetType().Name),
    };

    private static JinjaDict ToDict(IDictionary<string, object?> d)
    {
        var r = new JinjaDict();
        foreach (var (k, v) in d) r[k] = FromClr(v);
        return r;
    }

    public static bool IsNumber(object? v) => v is long or double or bool;
    public static bool IsSeq(object? v) => v is List<object?> or object?[];

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException("not a number"),
    };

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        IList<object?> l => l.Count > 0,
        JinjaDict d => d.Count > 0,
        _ => true,
    };

    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a == null || b == null) return a == null && b == null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        if (a is string sa && b is string sb) return sa == sb;
        if (a is IList<object?> la && b is IList<object?> lb)
        {
            // Python: a list never equals a tuple.
            if (a.GetType() != b.GetType() || la.Count != lb.Count) return false;
            for (int i = 0; i < la.Count; i++) if (!Equal(la[i], lb[i])) return false;
            return true;
        }
        if (a is JinjaDict da && b is JinjaDict db)
        {
            if (da.Count != db.Count) return false;
            foreach (var (k, v) in da) if (!db.TryGetValue(k, out var w) || !Equal(v, w)) return false;
            return true;
        }
        return ReferenceEquals(a, b);
    }

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new InvalidOperationException("not an integer"),
    };

    // Python ordering for numbers, strings and sequences; null when the types cannot be ordered.
    public static int? Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string sa && b is string sb) return Math.Sign(string.CompareOrdinal(sa, sb));
        if (a is IList<object?> la && b is IList<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Equal(la[i], lb[i])) continue;
                return Compare(la[i], lb[i]);
            }
            return la.Count.CompareTo(lb.Count);
        }
        return null;
    }

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        JinjaDict => "dict",
        Namespace => "Namespace",
        JinjaCallable => "function",
        _ => v.GetType().Name,
    };

    // Python's str(): what {{ value }} prints.
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    // Python's repr(), used for values nested inside lists and dicts.
    public static string Repr(object? v)
    {
        switch (v)
        {
            case null: return "None";
            case Undefined: return "";
            case bool b: return b ? "True" : "False";
            case long l: return l.ToString(CultureInfo.InvariantCulture);
            case double d: return FormatFloat(d);
            case string s: return ReprString(s);
            case List<object?> l: return "[" + string.Join(", ", l.Select(Repr)) + "]";
            case object?[] t: return t.Length == 1 ? "(" + Repr(t[0]) + ",)" : "(" + string.Join(", ", t.Select(Repr)) + ")";
            case JinjaDict d: return "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}";
            case Namespace: return "<Namespace>";
            case JinjaCallable c: return $"<function {c.Name}>";
            default: return v.ToString() ?? "";
        }
    }

    private static string ReprString(string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(q);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == q) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(q).ToString();
    }

    // Python's float repr: shortest round-trip digits, exponent form outside 1e-4 .. 1e16.
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // Use the shortest round-trip digits, then lay them out the Python way.
        var shortest = d.ToString("R", CultureInfo.InvariantCulture);
        var (digits, exp) = Decompose(shortest);
        var sign = d < 0 ? "-" : "";
        if (exp < -4 || exp >= 16)
        {
            var mant = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            return sign + mant + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }
        if (exp < 0) return sign + "0." + new string('0', -exp - 1) + digits;
        if (digits.Length <= exp + 1) return sign + digits + new string('0', exp + 1 - digits.Length) + ".0";
        return sign + digits[..(exp + 1)] + "." + digits[(exp + 1)..];
    }

    // "1.25E-05" or "-123.5" → significant digits "125" and the decimal exponent of the first digit.
    private static (string Digits, int Exp) Decompose(string s)
    {
        s = s.TrimStart('-');
        int exp = 0;
        int e = s.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exp = int.Parse(s[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            s = s[..e];
        }
        int dot = s.IndexOf('.');
        string intPart = dot < 0 ? s : s[..dot], frac = dot < 0 ? "" : s[(dot + 1)..];
        var all = intPart + frac;
        int lead = 0;
        while (lead < all.Length - 1 && all[lead] == '0') lead++;
        var digits = all[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        return (digits, exp + intPart.Length - 1 - lead);
    }
}
