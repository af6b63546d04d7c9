using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi.Tools;

/// <summary>
/// Pythonic calls (Llama 3.2 / 4 style): the whole output is a Python list of calls with keyword arguments,
/// `[get_weather(city="Paris"), get_time()]`; argument values are literals (strings, numbers, True/False/None,
/// lists, dicts). Read by a small parser, never evaluated.
/// </summary>
internal sealed class PythonicToolParser : ToolCallParser
{
    public override ParsedToolCalls Parse(string output)
    {
        var r = new Reader(output.Trim());
        var calls = r.Calls(out bool complete);
        return complete && calls.Count > 0 ? new(null, calls.Select(c => new ToolCall(NewId(), c.Name, JsonScan.PyDumps(c.Args))).ToList())
            : new(output, []);
    }

    internal override int CallsStart(string text) => text.TrimStart().StartsWith('[') ? 0 : -1;

    internal override int HoldBack(string text) => text.Trim().Length == 0 ? text.Length : 0;

    // Only whole calls: a call's arguments are known once its closing parenthesis is read.
    internal override List<PartialCall> PartialCalls(string calls) =>
        new Reader(calls.Trim()).Calls(out _).Select(c => new PartialCall(c.Name, JsonScan.PyDumps(c.Args), true)).ToList();

    private sealed class Reader(string s)
    {
        private int _i;

        // The calls read before the text ends or stops making sense; complete when the list closed at the very end.
        public List<(string Name, JsonObject Args)> Calls(out bool complete)
        {
            var calls = new List<(string, JsonObject)>();
            complete = false;
            try
            {
                Expect('[');
                while (true)
                {
                    Skip();
                    if (Peek() == ']' && calls.Count == 0)
                        return calls;
                    string name = Identifier();
                    Expect('(');
                    var args = new JsonObject();
                    Skip();
                    while (Peek() != ')')
                    {
                        string key = Identifier();
                        Expect('=');
                        args[key] = Value();
                        Skip();
                        if (Peek() == ',')
                            _i++;
                        Skip();
                    }
                    _i++;
                    calls.Add((name, args));
                    Skip();
                    if (Peek() == ']')
                    {
                        _i++;
                        Skip();
                        complete = _i == s.Length;
                        return calls;
                    }
                    Expect(',');
                }
            }
            catch (FormatException)
            {
                return calls;
            }
        }

        private JsonNode? Value()
        {
            Skip();
            char c = Peek();
            if (c is '"' or '\'')
                return String(c);
            if (c == '[')
            {
                _i++;
                var a = new JsonArray();
                for (Skip(); Peek() != ']'; Skip())
                {
                    a.Add(Value());
                    Skip();
                    if (Peek() == ',')
                        _i++;
                }
                _i++;
                return a;
            }
            if (c == '{')
            {
                _i++;
                var o = new JsonObject();
                for (Skip(); Peek() != '}'; Skip())
                {
                    var key = Value() is JsonValue k && k.TryGetValue(out string? ks) ? ks : throw new FormatException();
                    Expect(':');
                    o[key] = Value();
                    Skip();
                    if (Peek() == ',')
                        _i++;
                }
                _i++;
                return o;
            }
            int start = _i;
            while (_i < s.Length && (char.IsLetterOrDigit(s[_i]) || s[_i] is '.' or '-' or '+' or '_'))
                _i++;
            string word = s[start.._i];
            return word switch
            {
                "True" => true,
                "False" => false,
                "None" => null,
                _ when long.TryParse(word, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) => l,
                _ when double.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
                _ => throw new FormatException(),
            };
        }

        private string String(char quote)
        {
            var sb = new StringBuilder();
            for (_i++; Peek() != quote; _i++)
            {
                char c = s[_i];
                if (c == '\\')
                {
                    c = s[++_i] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', var x => x };
                }
                sb.Append(c);
            }
            _i++;
            return sb.ToString();
        }

        private string Identifier()
        {
            Skip();
            int start = _i;
            while (_i < s.Length && (char.IsLetterOrDigit(s[_i]) || s[_i] == '_'))
                _i++;
            return _i > start && !char.IsDigit(s[start]) ? s[start.._i] : throw new FormatException();
        }

        private void Expect(char c)
        {
            Skip();
            if (Peek() != c)
                throw new FormatException();
            _i++;
        }

        private void Skip()
        {
            while (_i < s.Length && char.IsWhiteSpace(s[_i]))
                _i++;
        }

        private char Peek() => _i < s.Length ? s[_i] : throw new FormatException();
    }
}
