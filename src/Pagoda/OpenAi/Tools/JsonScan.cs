using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi.Tools;

/// <summary>
/// Reading JSON as it is being generated: where a value ends (or that it has not ended yet), the objects of a
/// buffer with their "name" and arguments, and Python's json.dumps layout for arguments (what vLLM returns).
/// </summary>
internal static class JsonScan
{
    /// <summary>The end (exclusive) of the JSON value starting at <paramref name="at"/>, or -1 while it is unfinished.</summary>
    public static int ValueEnd(string s, int at)
    {
        int depth = 0;
        bool inString = false;
        for (int i = at; i < s.Length; i++)
        {
            char c = s[i];
            if (inString)
            {
                if (c == '\\')
                    i++;
                else if (c == '"')
                {
                    inString = false;
                    if (depth == 0)
                        return i + 1;
                }
                continue;
            }
            switch (c)
            {
                case '"': inString = true; break;
                case '{' or '[': depth++; break;
                case '}' or ']':
                    depth--;
                    if (depth == 0)
                        return i + 1;
                    if (depth < 0)
                        return i; // a bare value ended by its container
                    break;
                case ',' or ' ' or '\n' or '\r' or '\t' when depth == 0 && i > at:
                    return i; // the end of a number, true, false or null
            }
        }
        return -1;
    }

    /// <summary>
    /// The objects of <paramref name="s"/> in order, each with its "name" (once the string is complete) and the raw
    /// text of its "arguments" (or "parameters") so far; anything between objects (tags, brackets, separators) is skipped.
    /// </summary>
    public static List<PartialCall> Objects(string s)
    {
        var calls = new List<PartialCall>();
        int i = 0;
        while ((i = s.IndexOf('{', i)) >= 0)
        {
            int end = ValueEnd(s, i);
            var (name, args, argsDone) = Fields(s, i + 1, end < 0 ? s.Length : end - 1);
            calls.Add(new PartialCall(name, args, end >= 0 && argsDone));
            if (end < 0)
                break;
            i = end;
        }
        return calls;
    }

    // The "name" string and the arguments' raw text among the members of one object, s[from..to).
    private static (string? Name, string Args, bool ArgsDone) Fields(string s, int from, int to)
    {
        string? name = null;
        string args = "";
        bool done = false;
        int i = from;
        while (i < to)
        {
            int keyStart = s.IndexOf('"', i, to - i);
            if (keyStart < 0)
                break;
            int keyEnd = ValueEnd(s, keyStart);
            if (keyEnd < 0 || keyEnd > to)
                break;
            string key = s[(keyStart + 1)..(keyEnd - 1)];
            int colon = s.IndexOf(':', keyEnd, to - keyEnd);
            if (colon < 0)
                break;
            int v = colon + 1;
            while (v < to && char.IsWhiteSpace(s[v]))
                v++;
            if (v >= to)
                break;
            int vEnd = ValueEnd(s, v);
            bool complete = vEnd >= 0 && vEnd <= to;
            string raw = s[v..(complete ? vEnd : to)];
            if (key == "name" && complete && raw.StartsWith('"'))
                name = JsonNode.Parse(raw)!.GetValue<string>();
            else if (key is "arguments" or "parameters")
                (args, done) = (raw, complete);
            if (!complete)
                break;
            i = vEnd;
        }
        return (name, args, done);
    }

    /// <summary>JSON text in the layout of Python's json.dumps(value, ensure_ascii=False): ", " and ": " separators.</summary>
    public static string PyDumps(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JsonNode? node)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject o:
                sb.Append('{');
                bool first = true;
                foreach (var (k, v) in o)
                {
                    sb.Append(first ? "" : ", ");
                    first = false;
                    WriteString(sb, k);
                    sb.Append(": ");
                    Write(sb, v);
                }
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (int i = 0; i < a.Count; i++)
                {
                    sb.Append(i == 0 ? "" : ", ");
                    Write(sb, a[i]);
                }
                sb.Append(']');
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                WriteString(sb, v.GetValue<string>());
                break;
            default:
                sb.Append(node.ToJsonString());
                break;
        }
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
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
                case < ' ': sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }
        sb.Append('"');
    }
}
