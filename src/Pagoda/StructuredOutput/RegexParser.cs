using System.Globalization;

namespace Pagoda.StructuredOutput;

/// <summary>
/// Parses the common regex syntax (ECMAScript-like: literals, escapes, classes with \d \w \s and their
/// negations, '.', groups, alternation, ? * + {m,n} with optional lazy '?', ^ and $ at the ends) into an
/// <see cref="Expr"/> over UTF-8 bytes, for a whole-string match. \d, \w and \s are ASCII ([0-9],
/// [A-Za-z0-9_], [ \t\n\r\f\v]) as in JSON Schema's ECMA-262 patterns; '.' is any character but \n and \r.
/// Backreferences, lookarounds, word boundaries, inline flags, Unicode properties and possessive
/// quantifiers are rejected. An optional <c>restrict</c> set intersects every character (JSON strings
/// cannot hold raw quotes, backslashes or control characters).
/// </summary>
internal sealed class RegexParser
{
    private static readonly CodePointSet Digits = CodePointSet.Of(('0', '9'));
    private static readonly CodePointSet Word = CodePointSet.Of(('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z'));
    private static readonly CodePointSet Space = CodePointSet.Of(('\t', '\r'), (' ', ' '));
    private static readonly CodePointSet Dot = CodePointSet.Of(('\n', '\n'), ('\r', '\r')).Complement();

    private readonly string _p;
    private readonly int _end;
    private readonly CompileBudget _budget;
    private readonly CodePointSet? _restrict;
    private int _pos;

    private RegexParser(string pattern, int start, int end, CompileBudget budget, CodePointSet? restrict)
    {
        _p = pattern;
        _pos = start;
        _end = end;
        _budget = budget;
        _restrict = restrict;
    }

    public static Expr Parse(string pattern, CompileBudget budget, CodePointSet? restrict = null)
    {
        if (pattern.Length > budget.Limits.MaxSourceLength)
            throw new GrammarException($"regex longer than {budget.Limits.MaxSourceLength} characters");
        int start = pattern.StartsWith('^') ? 1 : 0;
        int end = pattern.Length;
        if (end > start && pattern[end - 1] == '$' && !Escaped(pattern, end - 1)) end--;
        var parser = new RegexParser(pattern, start, end, budget, restrict);
        var e = parser.ParseAlternation(0);
        if (parser._pos < end) throw parser.Error("unmatched ')'");
        return e;
    }

    private static bool Escaped(string p, int i)
    {
        int n = 0;
        while (i - n - 1 >= 0 && p[i - n - 1] == '\\') n++;
        return n % 2 == 1;
    }

    private GrammarException Error(string what) => new($"regex error at {_pos}: {what} in /{_p}/");

    private bool More => _pos < _end;

    private Expr ParseAlternation(int depth)
    {
        _budget.CheckNesting(depth);
        var branches = new List<Expr> { ParseSequence(depth) };
        while (More && _p[_pos] == '|')
        {
            _pos++;
            branches.Add(ParseSequence(depth));
        }
        return X.Alt(branches.ToArray());
    }

    private Expr ParseSequence(int depth)
    {
        var items = new List<Expr>();
        while (More && _p[_pos] != '|' && _p[_pos] != ')')
        {
            var atom = ParseAtom(depth);
            items.Add(ParseQuantifiers(atom));
        }
        return X.Seq(items.ToArray());
    }

    private Expr ParseQuantifiers(Expr atom)
    {
        if (!More) return atom;
        int min, max;
        char c = _p[_pos];
        if (c == '*') { min = 0; max = -1; _pos++; }
        else if (c == '+') { min = 1; max = -1; _pos++; }
        else if (c == '?') { min = 0; max = 1; _pos++; }
        else if (c == '{' && TryCounted(out min, out max)) { }
        else return atom;
        if (More && _p[_pos] == '?') _pos++; // lazy: the same language
        if (More && (_p[_pos] is '*' or '+' or '?' || (_p[_pos] == '{' && TryCounted(out _, out _))))
            throw Error("nested quantifier");
        return X.Rep(atom, min, max);
    }

    private bool TryCounted(out int min, out int max)
    {
        min = max = 0;
        int close = _p.IndexOf('}', _pos);
        if (close < 0 || close >= _end) return false;
        var body = _p.AsSpan(_pos + 1, close - _pos - 1);
        int comma = body.IndexOf(',');
        var lo = comma < 0 ? body : body[..comma];
        var hi = comma < 0 ? body : body[(comma + 1)..];
        if (lo.Length == 0 || !IsDigits(lo) || (hi.Length > 0 && !IsDigits(hi))) return false;
        min = Bound(lo);
        max = comma >= 0 && hi.Length == 0 ? -1 : Bound(hi);
        if (max >= 0 && max < min) throw Error($"{{{min},{max}}} has max below min");
        _pos = close + 1;
        return true;
    }

    private static bool IsDigits(ReadOnlySpan<char> s)
    {
        foreach (char c in s) if (c is < '0' or > '9') return false;
        return true;
    }

    private int Bound(ReadOnlySpan<char> digits)
    {
        if (digits.Length > 9 || int.Parse(digits, CultureInfo.InvariantCulture) is var n && n > _budget.Limits.MaxRepeat)
            throw new GrammarException($"regex repetition bound {digits} exceeds the limit of {_budget.Limits.MaxRepeat}");
        return n;
    }

    private Expr ParseAtom(int depth)
    {
        char c = _p[_pos];
        switch (c)
        {
            case '(':
                _pos++;
                SkipGroupPrefix();
                var inner = ParseAlternation(depth + 1);
                if (!More || _p[_pos] != ')') throw Error("missing ')'");
                _pos++;
                return inner;
            case '[':
                return Chars(new RegexClassParser(this).Parse());
            case '.':
                _pos++;
                return Chars(Dot);
            case '\\':
                return ParseEscape();
            case '*' or '+' or '?':
                throw Error($"quantifier '{c}' with nothing to repeat");
            case '^' or '$':
                throw Error($"anchor '{c}' is only supported at the start or end of the pattern");
            default:
                int cp = char.ConvertToUtf32(_p, _pos);
                _pos += char.IsSurrogatePair(_p, _pos) ? 2 : 1;
                return Chars(CodePointSet.Single(cp));
        }
    }

    private void SkipGroupPrefix()
    {
        if (!More || _p[_pos] != '?') return;
        var rest = _p.AsSpan(_pos);
        if (rest.StartsWith("?:")) { _pos += 2; return; }
        if (rest.StartsWith("?=") || rest.StartsWith("?!") || rest.StartsWith("?<=") || rest.StartsWith("?<!"))
            throw Error("lookaround is not supported");
        if (rest.StartsWith("?<") || rest.StartsWith("?P<") || rest.StartsWith("?'"))
        {
            int close = _p.IndexOfAny(['>', '\''], _pos + 2);
            if (close < 0) throw Error("unterminated group name");
            _pos = close + 1;
            return;
        }
        throw Error("inline flags and other (?...) groups are not supported");
    }

    private Expr ParseEscape()
    {
        var set = ParseEscapeSet(inClass: false);
        return Chars(set);
    }

    /// <summary>Reads an escape at '\\' and returns the characters it stands for.</summary>
    internal CodePointSet ParseEscapeSet(bool inClass)
    {
        _pos++;
        if (!More) throw Error("trailing backslash");
        char c = _p[_pos++];
        switch (c)
        {
            case 'd': return Copy(Digits);
            case 'D': return Digits.Complement();
            case 'w': return Copy(Word);
            case 'W': return Word.Complement();
            case 's': return Copy(Space);
            case 'S': return Space.Complement();
            case 'n': return CodePointSet.Single('\n');
            case 'r': return CodePointSet.Single('\r');
            case 't': return CodePointSet.Single('\t');
            case 'f': return CodePointSet.Single('\f');
            case 'v': return CodePointSet.Single('\v');
            case '0': return CodePointSet.Single(0);
            case 'b' when inClass: return CodePointSet.Single('\b');
            case 'b' or 'B': throw Error("word boundaries are not supported");
            case 'x': return CodePointSet.Single(Hex(2));
            case 'u' when More && _p[_pos] == '{':
            {
                int close = _p.IndexOf('}', _pos);
                if (close < 0 || close - _pos - 1 is < 1 or > 6) throw Error("bad \\u{...} escape");
                _pos++;
                return CodePointSet.Single(Hex(close - _pos, allowMax: true));
            }
            case 'u': return CodePointSet.Single(Hex(4));
            case 'p' or 'P': throw Error("Unicode property classes are not supported");
            case 'k': throw Error("backreferences are not supported");
            case >= '1' and <= '9': throw Error("backreferences are not supported");
            case 'c': throw Error("control escapes are not supported");
            default:
                if (char.IsLetterOrDigit(c)) throw Error($"unknown escape \\{c}");
                return CodePointSet.Single(c);
        }
    }

    private static CodePointSet Copy(CodePointSet s) => new CodePointSet().AddAll(s);

    private int Hex(int digits, bool allowMax = false)
    {
        if (_pos + digits > _end || !int.TryParse(_p.AsSpan(_pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v))
            throw Error("bad hex escape");
        _pos += digits;
        if (allowMax) _pos++; // the closing '}'
        if (v > CodePointSet.MaxCodePoint) throw Error("code point out of range");
        return v;
    }

    internal Expr Chars(CodePointSet set)
    {
        if (_restrict is not null) set = set.Intersect(_restrict);
        return set.ToExpr();
    }

    // Accessors for the class parser, which shares this parser's position.
    internal string Pattern => _p;
    internal int End => _end;
    internal int Pos { get => _pos; set => _pos = value; }
    internal GrammarException Fail(string what) => Error(what);
}
