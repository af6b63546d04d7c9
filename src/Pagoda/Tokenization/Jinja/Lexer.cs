using System.Globalization;
using System.Text;

namespace Pagoda.Tokenization.Jinja;

internal enum TokenKind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Op, Eof }

internal readonly record struct Token(TokenKind Kind, string Value, int Line)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public override string ToString() => Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.VarEnd => "end of print statement",
        TokenKind.BlockEnd => "end of statement block",
        TokenKind.String => $"string '{Value}'",
        _ => $"'{Value}'",
    };
}

// Splits template source into text and tag tokens, applying whitespace control on the text.
internal sealed class Lexer
{
    private static readonly string[] Ops =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    private readonly string _src;
    private readonly JinjaOptions _opt;
    private readonly List<Token> _tokens = new();
    private int _pos;
    private int _line = 1;

    private Lexer(string src, JinjaOptions opt)
    {
        // Jinja normalises newlines and, unless told otherwise, drops one trailing newline.
        src = src.Replace("\r\n", "\n").Replace('\r', '\n');
        if (!opt.KeepTrailingNewline && src.EndsWith('\n')) src = src[..^1];
        _src = src;
        _opt = opt;
    }

    public static List<Token> Tokenize(string source, JinjaOptions options)
    {
        var lx = new Lexer(source, options);
        lx.Run();
        return lx._tokens;
    }

    private void Run()
    {
        bool stripAll = false, trimNewline = false;
        while (true)
        {
            int tag = FindTag(_pos);
            int textEnd = tag < 0 ? _src.Length : tag;
            int start = _pos;
            // Whitespace control left by the previous tag applies to the start of this text.
            if (stripAll) while (start < textEnd && char.IsWhiteSpace(_src[start])) start++;
            else if (trimNewline && start < textEnd && _src[start] == '\n') start++;
            int end = textEnd;
            char kind = tag < 0 ? '\0' : _src[tag + 1];
            char mod = tag >= 0 && tag + 2 < _src.Length ? _src[tag + 2] : '\0';
            if (tag >= 0 && mod == '-')
            {
                while (end > start && char.IsWhiteSpace(_src[end - 1])) end--;
            }
            else if (tag >= 0 && _opt.LstripBlocks && kind != '{' && mod != '+')
            {
                int ls = end;
                while (ls > start && (_src[ls - 1] == ' ' || _src[ls - 1] == '\t')) ls--;
                // Only when the tag is the first thing on its line.
                if (ls == 0 || _src[ls - 1] == '\n') end = ls;
            }
            AddText(_pos, start, end);
            if (tag < 0)
            {
                _line += Count(_pos, _src.Length);
                break;
            }
            _line += Count(_pos, tag);
            _pos = tag + 2 + (mod is '-' or '+' ? 1 : 0);
            bool endMinus, endPlus;
            if (kind == '#') (endMinus, endPlus) = SkipComment();
            else (endMinus, endPlus) = LexTag(kind == '{');
            stripAll = endMinus;
            trimNewline = _opt.TrimBlocks && kind != '{' && !endPlus;
        }
        _tokens.Add(new Token(TokenKind.Eof, "", _line));
    }

    private int Count(int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (_src[i] == '\n') n++;
        return n;
    }

    private void AddText(int rawStart, int start, int end)
    {
        if (end > start)
            _tokens.Add(new Token(TokenKind.Text, _src[start..end], _line + Count(rawStart, start)));
    }

    private int FindTag(int from)
    {
        for (int i = _src.IndexOf('{', from); i >= 0 && i + 1 < _src.Length; i = _src.IndexOf('{', i + 1))
        {
            char c = _src[i + 1];
            if (c is '{' or '%' or '#') return i;
        }
        return -1;
    }

    private (bool Minus, bool Plus) SkipComment()
    {
        int end = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0) throw new JinjaException("missing end of comment tag", _line);
        bool minus = end > _pos && _src[end - 1] == '-';
        bool plus = end > _pos && _src[end - 1] == '+';
        _line += Count(_pos, end);
        _pos = end + 2;
        return (minus, plus);
    }

    private (bool Minus, bool Plus) LexTag(bool isVar)
    {
        _tokens.Add(new Token(isVar ? TokenKind.VarBegin : TokenKind.BlockBegin, isVar ? "{{" : "{%", _line));
        string close = isVar ? "}}" : "%}";
        int depth = 0; // brackets; a '}' inside a dict literal must not end a {{ }} tag
        while (true)
        {
            while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos]))
            {
                if (_src[_pos] == '\n') _line++;
                _pos++;
            }
            if (_pos >= _src.Length)
                throw new JinjaException($"unexpected end of template, expected '{close}'", _line);
            if (depth == 0)
            {
                foreach (var (prefix, minus, plus) in new[] { ("-", true, false), ("+", false, true), ("", false, false) })
                {
                    if (plus && isVar) continue;
                    if (string.CompareOrdinal(_src, _pos, prefix + close, 0, prefix.Length + 2) != 0) continue;
                    _tokens.Add(new Token(isVar ? TokenKind.VarEnd : TokenKind.BlockEnd, close, _line));
                    _pos += prefix.Length + 2;
                    return (minus, plus);
                }
            }
            char c = _src[_pos];
            if (c is '"' or '\'') LexString(c);
            else if (char.IsAsciiDigit(c)) LexNumber();
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                int s = _pos;
                while (_pos < _src.Length && (char.IsAsciiLetterOrDigit(_src[_pos]) || _src[_pos] == '_')) _pos++;
                _tokens.Add(new Token(TokenKind.Name, _src[s.._pos], _line));
            }
            else
            {
                var op = Ops.FirstOrDefault(o => string.CompareOrdinal(_src, _pos, o, 0, o.Length) == 0)
                    ?? throw new JinjaException($"unexpected character '{c}'", _line);
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}") depth = Math.Max(0, depth - 1);
                _tokens.Add(new Token(TokenKind.Op, op, _line));
                _pos += op.Length;
            }
        }
    }

    private void LexNumber()
    {
        int s = _pos;
        bool isFloat = false;
        void Digits() { while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_')) _pos++; }
        Digits();
        if (_pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            Digits();
        }
        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _src.Length && _src[_pos] is '+' or '-') _pos++;
            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) { isFloat = true; Digits(); }
            else _pos = save;
        }
        var text = _src[s.._pos].Replace("_", "");
        _tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, text, _line));
    }

    private void LexString(char quote)
    {
        int startLine = _line;
        var sb = new StringBuilder();
        _pos++;
        while (true)
        {
            if (_pos >= _src.Length) throw new JinjaException("unterminated string literal", startLine);
            char c = _src[_pos++];
            if (c == quote) break;
            if (c == '\n') _line++;
            if (c != '\\' || _pos >= _src.Length) { sb.Append(c); continue; }
            char e = _src[_pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case 'a': sb.Append('\a'); break;
                case '\\': case '\'': case '"': sb.Append(e); break;
                case '\n': _line++; break;
                case 'x': sb.Append(Hex(2)); break;
                case 'u': sb.Append(Hex(4)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(int.Parse(HexText(8), NumberStyles.HexNumber, CultureInfo.InvariantCulture))); break;
                default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes verbatim
            }
        }
        _tokens.Add(new Token(TokenKind.String, sb.ToString(), startLine));
    }

    private char Hex(int n) => (char)int.Parse(HexText(n), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private string HexText(int n)
    {
        if (_pos + n > _src.Length || _src.AsSpan(_pos, n).ContainsAnyExcept("0123456789abcdefABCDEF"))
            throw new JinjaException("invalid escape in string literal", _line);
        var s = _src.Substring(_pos, n);
        _pos += n;
        return s;
    }
}
