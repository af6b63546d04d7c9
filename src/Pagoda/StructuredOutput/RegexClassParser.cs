namespace Pagoda.StructuredOutput;

/// <summary>
/// A bracket class of a regex: [abc], [a-z], [^...], escapes inside (\d, \w, \s and their negations, \n,
/// \xHH, \uHHHH, \], \-, \\). A '-' first or last is literal; '[' inside is literal (no nested classes).
/// </summary>
internal sealed class RegexClassParser(RegexParser parser)
{
    public CodePointSet Parse()
    {
        string p = parser.Pattern;
        parser.Pos++; // '['
        bool negate = parser.Pos < parser.End && p[parser.Pos] == '^';
        if (negate) parser.Pos++;
        var set = new CodePointSet();
        bool first = true;
        while (true)
        {
            if (parser.Pos >= parser.End) throw parser.Fail("missing ']'");
            char c = p[parser.Pos];
            if (c == ']' && !first) { parser.Pos++; break; }
            first = false;
            var (lo, single) = Item();
            if (single is not null) { set.AddAll(single); continue; }
            if (parser.Pos + 1 < parser.End && p[parser.Pos] == '-' && p[parser.Pos + 1] != ']')
            {
                parser.Pos++;
                var (hi, hiSet) = Item();
                if (hiSet is not null) throw parser.Fail("a class escape cannot end a range");
                if (hi < lo) throw parser.Fail("range out of order");
                set.Add(lo, hi);
            }
            else set.Add(lo, lo);
        }
        return negate ? set.Complement() : set;
    }

    // One class member: a character (returned as lo) or, for \d-style escapes, a set.
    private (int Char, CodePointSet? Set) Item()
    {
        string p = parser.Pattern;
        if (p[parser.Pos] == '\\')
        {
            char next = parser.Pos + 1 < parser.End ? p[parser.Pos + 1] : '\0';
            var set = parser.ParseEscapeSet(inClass: true);
            if (next is 'd' or 'D' or 'w' or 'W' or 's' or 'S') return (0, set);
            return (set.Ranges[0].Lo, null);
        }
        int cp = char.ConvertToUtf32(p, parser.Pos);
        parser.Pos += char.IsSurrogatePair(p, parser.Pos) ? 2 : 1;
        return (cp, null);
    }
}
