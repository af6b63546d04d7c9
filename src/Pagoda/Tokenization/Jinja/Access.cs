namespace Pagoda.Tokenization.Jinja;

// Attribute, item and slice access with Jinja's fallbacks (missing → undefined).
internal static class Access
{
    // obj.name: Python attributes (methods) first, then the item of that name.
    public static object? GetAttr(object? obj, string name)
    {
        switch (obj)
        {
            case Undefined u:
                throw new JinjaError(u.Describe());
            case JinjaDict d:
                if (Methods.ForDict(d, name) is { } dm) return dm;
                return d.TryGetValue(name, out var v) ? v : new Undefined($"'dict object' has no attribute '{name}'");
            case string s:
                return (object?)Methods.ForString(s, name) ?? new Undefined($"'str object' has no attribute '{name}'");
            case Namespace ns:
                return ns.Attrs.TryGetValue(name, out var nv) ? nv : new Undefined($"'Namespace' has no attribute '{name}'");
            case LoopInfo loop:
                return loop.Get(name);
            case IList<object?> l:
                return (object?)Methods.ForList(l, name) ?? new Undefined($"'{Values.TypeName(obj)} object' has no attribute '{name}'");
            default:
                return new Undefined($"'{Values.TypeName(obj)} object' has no attribute '{name}'");
        }
    }

    // obj[key]: the item first, then (for string keys) the attribute.
    public static object? GetItem(object? obj, object? key)
    {
        switch (obj)
        {
            case Undefined u:
                throw new JinjaError(u.Describe());
            case JinjaDict d:
                if (key != null && d.TryGetValue(key, out var v)) return v;
                break;
            case IList<object?> l when key is long or bool:
                var i = Values.ToLong(key);
                if (i < 0) i += l.Count;
                if (i >= 0 && i < l.Count) return l[(int)i];
                return new Undefined($"{Values.TypeName(obj)} object has no element {Values.Repr(key)}");
            case string s when key is long or bool:
                var chars = Interpreter.Chars(s);
                var ci = Values.ToLong(key);
                if (ci < 0) ci += chars.Count;
                if (ci >= 0 && ci < chars.Count) return chars[(int)ci];
                return new Undefined($"str object has no element {Values.Repr(key)}");
        }
        if (key is string name && obj is not JinjaDict) return GetAttr(obj, name);
        if (key is string dictMethod && obj is JinjaDict dd && Methods.ForDict(dd, dictMethod) is { } m) return m;
        return new Undefined($"{Values.TypeName(obj)} object has no element {Values.Repr(key)}");
    }

    // Python slicing [start:stop:step] of lists, tuples and strings.
    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        long st = step == null ? 1 : Values.ToLong(CheckIndex(step));
        if (st == 0) throw new JinjaError("slice step cannot be zero");
        List<object?> items = obj switch
        {
            string s => Interpreter.Chars(s),
            List<object?> l => l,
            object?[] t => t.ToList(),
            Undefined u => throw new JinjaError(u.Describe()),
            _ => throw new JinjaError($"'{Values.TypeName(obj)}' object is not subscriptable"),
        };
        int n = items.Count;
        long Clamp(object? v, long dflt, long lo, long hi)
        {
            if (v == null) return dflt;
            long x = Values.ToLong(CheckIndex(v));
            if (x < 0) x += n;
            return Math.Clamp(x, lo, hi);
        }
        var picked = new List<object?>();
        if (st > 0)
        {
            long a = Clamp(start, 0, 0, n), b = Clamp(stop, n, 0, n);
            for (long i = a; i < b; i += st) picked.Add(items[(int)i]);
        }
        else
        {
            long a = Clamp(start, n - 1, -1, n - 1), b = Clamp(stop, -1, -1, n - 1);
            if (stop != null && Values.ToLong(stop) < -n) b = -1;
            for (long i = a; i > b; i += st) picked.Add(items[(int)i]);
        }
        return obj switch
        {
            string => string.Concat(picked.Cast<string>()),
            object?[] => picked.ToArray(),
            _ => picked,
        };
    }

    private static object? CheckIndex(object? v)
    {
        if (v is long || v is bool) return v;
        throw new JinjaError("slice indices must be integers or None");
    }
}
