using System.Globalization;
using System.Text;

namespace Pagoda.Tokenization.Jinja;

// Serialises values the way Python's json.dumps does, which is what transformers' tojson calls:
// ", " and ": " separators ("," when indenting), keys in insertion order, and by default
// ensure_ascii=False so non-ASCII text is kept as is.
internal sealed class Json
{
    public int? Indent { get; init; }
    public bool SortKeys { get; init; }
    public bool EnsureAscii { get; init; }
    public string? ItemSeparator { get; init; }
    public string KeySeparator { get; init; } = ": ";

    public string Serialize(object? value)
    {
        var sb = new StringBuilder();
        Write(sb, value, 0);
        return sb.ToString();
    }

    private void Write(StringBuilder sb, object? v, int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : Values.FormatFloat(d));
                break;
            case string s: WriteString(sb, s); break;
            case IList<object?> list:
                WriteContainer(sb, '[', ']', list.Count, depth, (i, d) => Write(sb, list[i], d));
                break;
            case JinjaDict dict:
                var pairs = dict.ToList();
                if (SortKeys) pairs.Sort((a, b) => Values.Compare(a.Key, b.Key) ?? 0);
                WriteContainer(sb, '{', '}', pairs.Count, depth, (i, d) =>
                {
                    WriteString(sb, KeyString(pairs[i].Key));
                    sb.Append(KeySeparator);
                    Write(sb, pairs[i].Value, d);
                });
                break;
            case Namespace ns:
                var nd = new JinjaDict();
                foreach (var (k, val) in ns.Attrs) nd[k] = val;
                Write(sb, nd, depth);
                break;
            case Undefined u:
                throw new JinjaError("Object of type Undefined is not JSON serializable (" + u.Describe() + ")");
            default:
                throw new JinjaError($"Object of type {Values.TypeName(v)} is not JSON serializable");
        }
    }

    // JSON object keys must be strings; Python converts numbers and booleans the same way.
    private static string KeyString(object key) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => Values.FormatFloat(d),
        _ => throw new JinjaError($"keys must be str, int, float or bool, not {Values.TypeName(key)}"),
    };

    private void WriteContainer(StringBuilder sb, char open, char close, int count, int depth, Action<int, int> item)
    {
        sb.Append(open);
        if (count == 0) { sb.Append(close); return; }
        var sep = ItemSeparator ?? (Indent == null ? ", " : ",");
        for (int i = 0; i < count; i++)
        {
            if (i > 0) sb.Append(sep);
            if (Indent is { } ind) sb.Append('\n').Append(' ', ind * (depth + 1));
            item(i, depth + 1);
        }
        if (Indent is { } ind2) sb.Append('\n').Append(' ', ind2 * depth);
        sb.Append(close);
    }

    private void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (EnsureAscii && c > 0x7e))
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
