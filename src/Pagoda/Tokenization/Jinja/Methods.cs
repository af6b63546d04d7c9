using System.Text;

namespace Pagoda.Tokenization.Jinja;

// Python methods templates call on strings, dicts and lists (read-only ones: the sandbox is immutable).
internal static class Methods
{
    private static JinjaCallable M(string name, Func<List<object?>, Dictionary<string, object?>, object?> f) => new(name, f);

    private static object? Arg(List<object?> args, Dictionary<string, object?> kwargs, int i, string name, object? dflt = null) =>
        i < args.Count ? args[i] : kwargs.TryGetValue(name, out var v) ? v : dflt;

    private static string StrArg(object? v, string method) =>
        v as string ?? throw new JinjaError($"{method}() argument must be str, not {Values.TypeName(v)}");

    public static JinjaCallable? ForString(string s, string name) => name switch
    {
        "startswith" => M(name, (a, k) => Affix(s, Arg(a, k, 0, "prefix"), name, (x, p) => x.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => M(name, (a, k) => Affix(s, Arg(a, k, 0, "suffix"), name, (x, p) => x.EndsWith(p, StringComparison.Ordinal))),
        "strip" => M(name, (a, k) => Strip(s, Arg(a, k, 0, "chars"), true, true)),
        "lstrip" => M(name, (a, k) => Strip(s, Arg(a, k, 0, "chars"), true, false)),
        "rstrip" => M(name, (a, k) => Strip(s, Arg(a, k, 0, "chars"), false, true)),
        "split" => M(name, (a, k) => Split(s, Arg(a, k, 0, "sep"), Values.ToLong(Arg(a, k, 1, "maxsplit", -1L)))),
        "splitlines" => M(name, (_, _) => s.Split('\n').Cast<object?>().ToList().Also(l => { if (s.EndsWith('\n')) l.RemoveAt(l.Count - 1); })),
        "replace" => M(name, (a, k) => Replace(s, StrArg(Arg(a, k, 0, "old"), name), StrArg(Arg(a, k, 1, "new"), name), Values.ToLong(Arg(a, k, 2, "count", -1L)))),
        "upper" => M(name, (_, _) => s.ToUpperInvariant()),
        "lower" => M(name, (_, _) => s.ToLowerInvariant()),
        "title" => M(name, (_, _) => PyTitle(s)),
        "capitalize" => M(name, (_, _) => Capitalize(s)),
        "find" => M(name, (a, k) => (long)s.IndexOf(StrArg(Arg(a, k, 0, "sub"), name), StringComparison.Ordinal)),
        "count" => M(name, (a, k) => CountOf(s, StrArg(Arg(a, k, 0, "x"), name))),
        "join" => M(name, (a, k) => string.Join(s, Interpreter.Iterate(Arg(a, k, 0, "iterable")).Select(x => StrArg(x, name)))),
        "format" => M(name, (a, k) => Format.Braces(s, a, k)),
        "isdigit" => M(name, (_, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isspace" => M(name, (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "isalpha" => M(name, (_, _) => s.Length > 0 && s.All(char.IsLetter)),
        _ => null,
    };

    public static JinjaCallable? ForDict(JinjaDict d, string name) => name switch
    {
        "items" => M(name, (_, _) => d.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList()),
        "keys" => M(name, (_, _) => d.Keys.Cast<object?>().ToList()),
        "values" => M(name, (_, _) => d.Values.ToList()),
        "get" => M(name, (a, k) =>
        {
            var key = Arg(a, k, 0, "key");
            return key != null && d.TryGetValue(key, out var v) ? v : Arg(a, k, 1, "default");
        }),
        _ => null,
    };

    public static JinjaCallable? ForList(IList<object?> l, string name) => name switch
    {
        "index" => M(name, (a, k) =>
        {
            var x = Arg(a, k, 0, "value");
            for (int i = 0; i < l.Count; i++) if (Values.Equal(l[i], x)) return (long)i;
            throw new JinjaError($"{Values.Repr(x)} is not in list");
        }),
        "count" => M(name, (a, k) => (long)l.Count(x => Values.Equal(x, Arg(a, k, 0, "value")))),
        _ => null,
    };

    private static bool Affix(string s, object? arg, string method, Func<string, string, bool> test) => arg switch
    {
        string p => test(s, p),
        object?[] t => t.Any(p => test(s, StrArg(p, method))),
        _ => throw new JinjaError($"{method} first arg must be str or a tuple of str, not {Values.TypeName(arg)}"),
    };

    public static string Strip(string s, object? chars, bool left, bool right)
    {
        if (chars is Undefined) chars = null;
        Func<char, bool> strip = chars == null ? char.IsWhiteSpace : StrArg(chars, "strip").Contains;
        int a = 0, b = s.Length;
        if (left) while (a < b && strip(s[a])) a++;
        if (right) while (b > a && strip(s[b - 1])) b--;
        return s[a..b];
    }

    private static List<object?> Split(string s, object? sep, long max)
    {
        var r = new List<object?>();
        if (sep == null)
        {
            // Whitespace split: runs of whitespace separate, empty pieces dropped.
            int i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (max >= 0 && r.Count == max) { r.Add(s[i..]); break; }
                int j = i;
                while (j < s.Length && !char.IsWhiteSpace(s[j])) j++;
                r.Add(s[i..j]);
                i = j;
            }
            return r;
        }
        var sp = StrArg(sep, "split");
        if (sp.Length == 0) throw new JinjaError("empty separator");
        int pos = 0;
        while (max < 0 || r.Count < max)
        {
            int at = s.IndexOf(sp, pos, StringComparison.Ordinal);
            if (at < 0) break;
            r.Add(s[pos..at]);
            pos = at + sp.Length;
        }
        r.Add(s[pos..]);
        return r;
    }

    private static string Replace(string s, string old, string @new, long count)
    {
        if (count < 0) return old.Length == 0 ? InsertEverywhere(s, @new) : s.Replace(old, @new, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (at < 0 || old.Length == 0) break;
            sb.Append(s, pos, at - pos).Append(@new);
            pos = at + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static string InsertEverywhere(string s, string ins) =>
        ins + string.Concat(Interpreter.Chars(s).Select(c => (string)c! + ins));

    private static long CountOf(string s, string sub)
    {
        if (sub.Length == 0) return Interpreter.Chars(s).Count + 1;
        long n = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    // Python's str.title(): a letter after a non-letter is upper-cased, the rest lower-cased.
    public static string PyTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevLetter = false;
        foreach (var c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }
}

internal static class ListExtensions
{
    public static List<T> Also<T>(this List<T> list, Action<List<T>> action)
    {
        action(list);
        return list;
    }
}
