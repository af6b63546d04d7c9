using System.Globalization;
using System.Text;

namespace Pagoda.Tokenization.Jinja;

// Global functions every template sees: the Jinja ones plus transformers' chat-template helpers.
internal static class Globals
{
    public static Scope Create(Interpreter it)
    {
        var g = new Scope(null);
        g.Set("raise_exception", new JinjaCallable("raise_exception", (a, _) =>
            throw new JinjaError(a.Count > 0 ? Values.Str(a[0]) : "raise_exception() called")));
        g.Set("strftime_now", new JinjaCallable("strftime_now", (a, _) =>
            Strftime(it.Now(), a.Count > 0 ? Values.Str(a[0]) : throw new JinjaError("strftime_now() needs a format"))));
        g.Set("range", new JinjaCallable("range", (a, _) => Range(a)));
        g.Set("namespace", new JinjaCallable("namespace", (a, k) =>
        {
            var ns = new Namespace();
            foreach (var arg in a)
            {
                if (arg is not JinjaDict d) throw new JinjaError("namespace() takes keyword arguments or a dict");
                foreach (var (key, v) in d) ns.Attrs[Values.Str(key)] = v;
            }
            foreach (var (key, v) in k) ns.Attrs[key] = v;
            return ns;
        }));
        g.Set("dict", new JinjaCallable("dict", (a, k) =>
        {
            var d = new JinjaDict();
            if (a.Count > 0 && a[0] is JinjaDict src) foreach (var (key, v) in src) d[key] = v;
            foreach (var (key, v) in k) d[key] = v;
            return d;
        }));
        return g;
    }

    private static List<object?> Range(List<object?> a)
    {
        if (a.Count is 0 or > 3) throw new JinjaError("range expected 1 to 3 arguments");
        foreach (var x in a) if (x is not (long or bool)) throw new JinjaError($"'{Values.TypeName(x)}' object cannot be interpreted as an integer");
        long start = a.Count == 1 ? 0 : Values.ToLong(a[0]);
        long stop = Values.ToLong(a.Count == 1 ? a[0] : a[1]);
        long step = a.Count == 3 ? Values.ToLong(a[2]) : 1;
        if (step == 0) throw new JinjaError("range() arg 3 must not be zero");
        var r = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (r.Count >= 100_000) throw new JinjaError("range is too big"); // the sandbox caps this too
            r.Add(i);
        }
        return r;
    }

    // C strftime for the codes templates use (e.g. Llama 3.1's "%d %b %Y").
    public static string Strftime(DateTime t, string fmt)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            bool noPad = false;
            if (c == '-' && i + 1 < fmt.Length) { noPad = true; c = fmt[++i]; } // glibc's "%-d"
            string Num(int v, int width) => noPad ? v.ToString(inv) : v.ToString(new string('0', width), inv);
            sb.Append(c switch
            {
                'Y' => t.Year.ToString(inv),
                'y' => Num(t.Year % 100, 2),
                'm' => Num(t.Month, 2),
                'd' => Num(t.Day, 2),
                'e' => t.Day.ToString(inv).PadLeft(2),
                'H' => Num(t.Hour, 2),
                'I' => Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => Num(t.DayOfYear, 3),
                'b' or 'h' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'F' => t.ToString("yyyy-MM-dd", inv),
                'T' => t.ToString("HH:mm:ss", inv),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
