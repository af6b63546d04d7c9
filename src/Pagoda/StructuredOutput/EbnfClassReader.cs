namespace Pagoda.StructuredOutput;

/// <summary>A GBNF character class: [abc], [a-z], [^...], with the literal escapes of GBNF strings.</summary>
internal sealed class EbnfClassReader(EbnfParser parser)
{
    public Expr Read()
    {
        string s = parser.Text;
        parser.Pos++; // '['
        bool negate = parser.Pos < s.Length && s[parser.Pos] == '^';
        if (negate) parser.Pos++;
        var set = new CodePointSet();
        while (true)
        {
            if (parser.Pos >= s.Length) throw parser.Fail("missing ']'");
            if (s[parser.Pos] == ']') { parser.Pos++; break; }
            int lo = Char();
            if (parser.Pos + 1 < s.Length && s[parser.Pos] == '-' && s[parser.Pos + 1] != ']')
            {
                parser.Pos++;
                int hi = Char();
                if (hi < lo) throw parser.Fail("class range out of order");
                set.Add(lo, hi);
            }
            else set.Add(lo, lo);
        }
        return (negate ? set.Complement() : set).ToExpr();
    }

    private int Char()
    {
        string s = parser.Text;
        if (s[parser.Pos] == '\\') return parser.Escape();
        if (char.IsSurrogate(s[parser.Pos]) && !char.IsSurrogatePair(s, parser.Pos)) throw parser.Fail("lone surrogate");
        int c = char.ConvertToUtf32(s, parser.Pos);
        parser.Pos += char.IsSurrogatePair(s, parser.Pos) ? 2 : 1;
        return c;
    }
}
