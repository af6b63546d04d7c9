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

    /// <summary>
    /// JSON text in the layout of Python's json.dumps(value, ensure_ascii=False), ", " and ": " separators, as vLLM
    /// returns arguments: the chat templates' own tojson writer.
    /// </summary>
    public static string PyDumps(JsonNode? node) => new Tokenization.Jinja.Json().Serialize(Tokenization.Jinja.Values.FromJson(node));
}
