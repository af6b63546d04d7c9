using System.Globalization;
using System.Text;

namespace Pagoda.StructuredOutput;

/// <summary>
/// vLLM's <c>grammar</c> option in two dialects, told apart by "::=": GBNF (llama.cpp: <c>root ::= ...</c>,
/// "literals", [character classes], '.', ( ), | , ? * + {m,n}, # comments) and a Lark-like EBNF subset
/// (<c>start: ...</c>, "literals" with "a".."z" ranges, /regex/, [optional], ( ), |, ? * +, ~n and ~n..m,
/// // comments, ?rule and !rule prefixes). Rules may be recursive (not left-recursive). Lark directives
/// (%import, %ignore), priorities and case-insensitive literals are rejected.
/// </summary>
internal sealed class EbnfParser
{
    private readonly string _s;
    private readonly bool _lark;
    private readonly GrammarBuilder _b;
    private readonly Dictionary<string, int> _rules = new(StringComparer.Ordinal);
    private int _pos;

    private EbnfParser(string text, GrammarBuilder b)
    {
        _s = text;
        _b = b;
        _lark = !text.Contains("::=", StringComparison.Ordinal);
    }

    public static int Parse(GrammarBuilder b, string text)
    {
        if (text.Length > b.Budget.Limits.MaxSourceLength)
            throw new GrammarException($"grammar longer than {b.Budget.Limits.MaxSourceLength} characters");
        var p = new EbnfParser(text, b);
        p.ParseRules();
        string root = p._lark ? "start" : "root";
        if (!p._rules.TryGetValue(root, out int rule) || !b.IsDefined(rule))
            throw new GrammarException($"the grammar has no '{root}' rule");
        return rule;
    }

    private GrammarException Error(string what)
    {
        int line = 1 + _s.AsSpan(0, Math.Min(_pos, _s.Length)).Count('\n');
        return new GrammarException($"grammar error on line {line}: {what}");
    }

    private bool More => _pos < _s.Length;

    private char Peek(int ahead = 0) => _pos + ahead < _s.Length ? _s[_pos + ahead] : '\0';

    private void ParseRules()
    {
        while (true)
        {
            SkipSpace();
            if (!More) return;
            if (Peek() == '%') throw Error("Lark directives (%import, %ignore, ...) are not supported");
            if (_lark && Peek() is '?' or '!') _pos++;
            string name = Ident() ?? throw Error("expected a rule name");
            SkipSpace();
            if (_lark && Peek() == '.') throw Error("rule priorities are not supported");
            if (!TryDefinitionMark()) throw Error($"expected {(_lark ? "':'" : "'::='")} after '{name}'");
            int rule = RuleId(name);
            if (_b.IsDefined(rule)) throw Error($"rule '{name}' is defined twice");
            _b.Budget.CheckTime();
            _b.Define(rule, Alternation(0));
        }
    }

    private bool TryDefinitionMark()
    {
        if (_lark && Peek() == ':' && Peek(1) != ':') { _pos++; return true; }
        if (!_lark && _s.AsSpan(_pos).StartsWith("::=")) { _pos += 3; return true; }
        return false;
    }

    private int RuleId(string name) => _rules.TryGetValue(name, out int id) ? id : _rules[name] = _b.Declare(name);

    private string? Ident()
    {
        int start = _pos;
        while (More && (char.IsAsciiLetterOrDigit(Peek()) || Peek() == '_' || (!_lark && Peek() == '-'))) _pos++;
        return _pos > start ? _s[start.._pos] : null;
    }

    private void SkipSpace()
    {
        while (More)
        {
            char c = Peek();
            if (char.IsWhiteSpace(c)) _pos++;
            else if ((!_lark && c == '#') || (_lark && c == '/' && Peek(1) == '/'))
                while (More && Peek() != '\n') _pos++;
            else return;
        }
    }

    private Expr Alternation(int depth)
    {
        _b.Budget.CheckNesting(depth);
        var branches = new List<Expr> { Sequence(depth) };
        while (true)
        {
            SkipSpace();
            if (Peek() != '|') return X.Alt(branches.ToArray());
            _pos++;
            branches.Add(Sequence(depth));
        }
    }

    private Expr Sequence(int depth)
    {
        var items = new List<Expr>();
        while (true)
        {
            SkipSpace();
            if (!More || Peek() is '|' or ')' || (_lark && Peek() == ']') || AtRuleStart()) break;
            items.Add(Postfix(Primary(depth)));
        }
        return X.Seq(items.ToArray());
    }

    // A rule ends where the next one begins: a name followed by its definition mark.
    private bool AtRuleStart()
    {
        int save = _pos;
        if (_lark && Peek() is '?' or '!') _pos++;
        bool start = Ident() is not null && SkipSpaceThen() && TryDefinitionMark();
        _pos = save;
        return start;
    }

    private bool SkipSpaceThen()
    {
        while (More && Peek() is ' ' or '\t') _pos++;
        return true;
    }

    private Expr Postfix(Expr e)
    {
        while (true)
        {
            SkipSpaceThen();
            char c = Peek();
            if (c == '*') { _pos++; e = X.Star(e); }
            else if (c == '+') { _pos++; e = X.Plus(e); }
            else if (c == '?') { _pos++; e = X.Opt(e); }
            else if (!_lark && c == '{') e = Counted(e, '}');
            else if (_lark && c == '~') e = Counted(e, '\0');
            else return e;
        }
    }

    // {m}, {m,}, {m,n} (GBNF) or ~m, ~m..n (Lark).
    private Expr Counted(Expr e, char close)
    {
        _pos++;
        SkipSpaceThen();
        int min = Number(), max = min;
        SkipSpaceThen();
        if (close == '}' && Peek() == ',')
        {
            _pos++;
            SkipSpaceThen();
            max = char.IsAsciiDigit(Peek()) ? Number() : -1;
            SkipSpaceThen();
        }
        else if (close == '\0' && Peek() == '.' && Peek(1) == '.') { _pos += 2; max = Number(); }
        if (close == '}') { if (Peek() != '}') throw Error("expected '}'"); _pos++; }
        if (max >= 0 && max < min) throw Error("repetition max below min");
        return X.Rep(e, min, max);
    }

    private int Number()
    {
        int start = _pos;
        while (char.IsAsciiDigit(Peek())) _pos++;
        if (_pos == start || _pos - start > 9) throw Error("expected a repetition count");
        int n = int.Parse(_s.AsSpan(start, _pos - start), CultureInfo.InvariantCulture);
        _b.Budget.CheckRepeat(n);
        return n;
    }

    private Expr Primary(int depth)
    {
        char c = Peek();
        if (c == '"' || (_lark && c == '\'')) return Literal();
        if (c == '(') return Group(depth, ')');
        if (c == '[') return _lark ? X.Opt(Group(depth, ']')) : new EbnfClassReader(this).Read();
        if (!_lark && c == '.') { _pos++; return CodePointSet.All().ToExpr(); }
        if (_lark && c == '/') return LarkRegex();
        string name = Ident() ?? throw Error($"unexpected '{c}'");
        return X.Ref(RuleId(name));
    }

    private Expr Group(int depth, char close)
    {
        _pos++;
        var e = Alternation(depth + 1);
        SkipSpace();
        if (Peek() != close) throw Error($"expected '{close}'");
        _pos++;
        return e;
    }

    private Expr Literal()
    {
        string s = ReadString();
        if (_lark && Peek() == 'i' && !char.IsAsciiLetterOrDigit(Peek(1))) throw Error("case-insensitive literals are not supported");
        if (_lark && _s.AsSpan(_pos).StartsWith("..") && Peek(2) is '"' or '\'')
        {
            _pos += 2;
            string hi = ReadString();
            if (s.EnumerateRunes().Count() != 1 || hi.EnumerateRunes().Count() != 1) throw Error("a range needs single characters");
            int a = char.ConvertToUtf32(s, 0), b = char.ConvertToUtf32(hi, 0);
            if (b < a) throw Error("range out of order");
            return CodePointSet.Of((a, b)).ToExpr();
        }
        _b.Budget.AddLiteralBytes(Encoding.UTF8.GetByteCount(s));
        return X.Lit(s);
    }

    private string ReadString()
    {
        char quote = Peek();
        _pos++;
        var text = new StringBuilder();
        while (true)
        {
            if (!More) throw Error("unterminated string literal");
            char c = Peek();
            if (c == quote) { _pos++; return text.ToString(); }
            if (c == '\\') text.Append(char.ConvertFromUtf32(Escape()));
            else { text.Append(c); _pos++; }
        }
    }

    private Expr LarkRegex()
    {
        int start = ++_pos;
        while (More && Peek() != '/') _pos += Peek() == '\\' ? 2 : 1;
        if (!More) throw Error("unterminated /regex/");
        string body = _s[start.._pos];
        _pos++;
        if (char.IsAsciiLetter(Peek())) throw Error("regex flags are not supported");
        return RegexParser.Parse(body.Replace("\\/", "/"), _b.Budget);
    }

    /// <summary>Reads an escape at '\\' (in a literal or class) and returns its code point.</summary>
    internal int Escape()
    {
        _pos++;
        char c = Peek();
        _pos++;
        switch (c)
        {
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case '0': return 0;
            case 'x': return Hex(2);
            case 'u': return Hex(4);
            case 'U': return Hex(8);
            case '\0': throw Error("trailing backslash");
            default: return c;
        }
    }

    private int Hex(int n)
    {
        if (_pos + n > _s.Length || !int.TryParse(_s.AsSpan(_pos, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v)
            || v > CodePointSet.MaxCodePoint || v is >= 0xD800 and <= 0xDFFF)
            throw Error("bad hex escape");
        _pos += n;
        return v;
    }

    // Shared with the class reader.
    internal string Text => _s;
    internal int Pos { get => _pos; set => _pos = value; }
    internal GrammarException Fail(string what) => Error(what);
}
