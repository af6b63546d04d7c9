using System.Globalization;
using System.Text;

namespace Pagoda.Tokenization.Jinja;

// Python semantics for arithmetic, concatenation, comparison and membership.
internal static class Operators
{
    public static object? Binary(string op, object? l, object? r)
    {
        if (op == "~") return Values.Str(l) + Values.Str(r);
        if (l is Undefined ul) throw new JinjaError(ul.Describe());
        if (r is Undefined ur) throw new JinjaError(ur.Describe());
        if (Values.IsNumber(l) && Values.IsNumber(r)) return Arith(op, l!, r!);
        switch (op)
        {
            case "+" when l is string a && r is string b: return a + b;
            case "+" when l is List<object?> a && r is List<object?> b: return a.Concat(b).ToList();
            case "+" when l is object?[] a && r is object?[] b: return a.Concat(b).ToArray();
            case "*" when l is string s && r is long or bool: return Repeat(s, Values.ToLong(r));
            case "*" when r is string s && l is long or bool: return Repeat(s, Values.ToLong(l));
            case "*" when l is List<object?> a && r is long or bool: return Enumerable.Repeat(a, (int)Math.Max(0, Values.ToLong(r))).SelectMany(x => x).ToList();
            case "%" when l is string fmt: return Format.Percent(fmt, r);
        }
        throw new JinjaError($"unsupported operand type(s) for {op}: '{Values.TypeName(l)}' and '{Values.TypeName(r)}'");
    }

    private static string Repeat(string s, long n) => n <= 0 ? "" : new StringBuilder(s.Length * (int)n).Insert(0, s, (int)n).ToString();

    private static object Arith(string op, object l, object r)
    {
        bool ints = l is not double && r is not double;
        if (ints)
        {
            long a = Values.ToLong(l), b = Values.ToLong(r);
            switch (op)
            {
                case "+": return a + b;
                case "-": return a - b;
                case "*": return a * b;
                case "/": return b == 0 ? throw DivZero() : (double)a / b;
                case "//": return b == 0 ? throw DivZero() : FloorDiv(a, b);
                case "%": return b == 0 ? throw DivZero() : a - b * FloorDiv(a, b);
                case "**": return b >= 0 ? IntPow(a, b) : (object)Math.Pow(a, b); // cast keeps int ** int an int
            }
        }
        double x = Values.ToDouble(l), y = Values.ToDouble(r);
        return op switch
        {
            "+" => x + y,
            "-" => x - y,
            "*" => x * y,
            "/" => y == 0 ? throw DivZero() : x / y,
            "//" => y == 0 ? throw DivZero() : Math.Floor(x / y),
            "%" => y == 0 ? throw DivZero() : x - y * Math.Floor(x / y),
            "**" => Math.Pow(x, y),
            _ => throw new JinjaError($"unknown operator {op}"),
        };
    }

    private static JinjaError DivZero() => new("division by zero");

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
    }

    private static long IntPow(long a, long b)
    {
        long r = 1;
        for (long i = 0; i < b; i++) r *= a;
        return r;
    }

    public static object? Negate(object? v) => v switch
    {
        long l => (object)(-l), // cast: otherwise the switch's natural type would be double
        double d => -d,
        bool b => b ? -1L : 0L,
        Undefined u => throw new JinjaError(u.Describe()),
        _ => throw new JinjaError($"bad operand type for unary -: '{Values.TypeName(v)}'"),
    };

    public static bool Compare(string op, object? l, object? r)
    {
        switch (op)
        {
            case "==": return Values.Equal(l, r);
            case "!=": return !Values.Equal(l, r);
            case "in": return Contains(r, l);
            case "notin": return !Contains(r, l);
        }
        if (l is Undefined ul) throw new JinjaError(ul.Describe());
        if (r is Undefined ur) throw new JinjaError(ur.Describe());
        var c = Values.Compare(l, r)
            ?? throw new JinjaError($"'{op}' not supported between instances of '{Values.TypeName(l)}' and '{Values.TypeName(r)}'");
        return op switch
        {
            "<" => c < 0,
            "<=" => c <= 0,
            ">" => c > 0,
            ">=" => c >= 0,
            _ => throw new JinjaError($"unknown operator {op}"),
        };
    }

    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw new JinjaError($"'in <string>' requires string as left operand, not {Values.TypeName(item)}"),
        IList<object?> l => l.Any(x => Values.Equal(x, item)),
        JinjaDict d => item != null && d.ContainsKey(item),
        Undefined => false,
        _ => throw new JinjaError($"argument of type '{Values.TypeName(container)}' is not iterable"),
    };
}

// Python string formatting: "%s" % x and "{}".format(x).
internal static class Format
{
    public static string Percent(string fmt, object? args)
    {
        var list = args is object?[] t ? t.ToList() : [args];
        int next = 0;
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%') { sb.Append(fmt[i]); continue; }
            int j = i + 1;
            while (j < fmt.Length && "-+ #0123456789.".Contains(fmt[j])) j++;
            if (j >= fmt.Length) throw new JinjaError("incomplete format");
            var spec = fmt[(i + 1)..j];
            char conv = fmt[j];
            i = j;
            if (conv == '%') { sb.Append('%'); continue; }
            if (next >= list.Count) throw new JinjaError("not enough arguments for format string");
            var a = list[next++];
            sb.Append(conv switch
            {
                's' => Values.Str(a),
                'r' => Values.Repr(a),
                'd' or 'i' => Values.IsNumber(a) ? ((long)Math.Truncate(Values.ToDouble(a))).ToString(CultureInfo.InvariantCulture) : throw new JinjaError("%d format: a number is required"),
                'f' => Values.ToDouble(a).ToString("F" + (spec.Contains('.') ? spec[(spec.IndexOf('.') + 1)..] : "6"), CultureInfo.InvariantCulture),
                _ => throw new JinjaError($"unsupported format character '{conv}'"),
            });
        }
        if (next < list.Count) throw new JinjaError("not all arguments converted during string formatting");
        return sb.ToString();
    }

    public static string Braces(string fmt, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c == '{' && i + 1 < fmt.Length && fmt[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < fmt.Length && fmt[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int end = fmt.IndexOf('}', i);
            if (end < 0) throw new JinjaError("single '{' encountered in format string");
            var field = fmt[(i + 1)..end];
            int colon = field.IndexOf(':');
            if (colon >= 0) field = field[..colon]; // format specs are not supported; value printed as str()
            object? v;
            if (field.Length == 0) v = auto < args.Count ? args[auto++] : throw new JinjaError("format index out of range");
            else if (int.TryParse(field, out var idx)) v = idx < args.Count ? args[idx] : throw new JinjaError("format index out of range");
            else v = kwargs.TryGetValue(field, out var kv) ? kv : throw new JinjaError($"format key '{field}' missing");
            sb.Append(Values.Str(v));
            i = end;
        }
        return sb.ToString();
    }
}
