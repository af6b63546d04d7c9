namespace Pagoda.StructuredOutput;

/// <summary>
/// A set of Unicode scalar values as sorted, disjoint, non-adjacent ranges; character classes of regexes and
/// grammars are built here and then expanded to UTF-8 byte automata by <see cref="ToExpr"/>.
/// </summary>
internal sealed class CodePointSet
{
    public const int MaxCodePoint = 0x10FFFF;
    private readonly List<(int Lo, int Hi)> _ranges = [];

    public IReadOnlyList<(int Lo, int Hi)> Ranges => _ranges;

    public bool IsEmpty => _ranges.Count == 0;

    public static CodePointSet Of(params (int Lo, int Hi)[] ranges)
    {
        var s = new CodePointSet();
        foreach (var (lo, hi) in ranges) s.Add(lo, hi);
        return s;
    }

    public static CodePointSet Single(int c) => Of((c, c));

    /// <summary>Every scalar value (surrogates are dropped when expanding to UTF-8).</summary>
    public static CodePointSet All() => Of((0, MaxCodePoint));

    public CodePointSet Add(int lo, int hi)
    {
        if (lo > hi) return this;
        _ranges.Add((lo, hi));
        Normalize();
        return this;
    }

    public CodePointSet AddAll(CodePointSet other)
    {
        _ranges.AddRange(other._ranges);
        Normalize();
        return this;
    }

    public CodePointSet Complement()
    {
        var result = new CodePointSet();
        int next = 0;
        foreach (var (lo, hi) in _ranges)
        {
            if (lo > next) result._ranges.Add((next, lo - 1));
            next = hi + 1;
        }
        if (next <= MaxCodePoint) result._ranges.Add((next, MaxCodePoint));
        return result;
    }

    public CodePointSet Intersect(CodePointSet other) =>
        Complement().AddAll(other.Complement()).Complement();

    public bool Contains(int c) => _ranges.Any(r => r.Lo <= c && c <= r.Hi);

    private void Normalize()
    {
        _ranges.Sort();
        int w = 0;
        for (int i = 0; i < _ranges.Count; i++)
        {
            if (w > 0 && _ranges[i].Lo <= _ranges[w - 1].Hi + 1)
                _ranges[w - 1] = (_ranges[w - 1].Lo, Math.Max(_ranges[w - 1].Hi, _ranges[i].Hi));
            else
                _ranges[w++] = _ranges[i];
        }
        _ranges.RemoveRange(w, _ranges.Count - w);
    }

    /// <summary>
    /// The set as an alternation of UTF-8 byte sequences. Each range is cut where the encoded length changes
    /// and where continuation bytes would not span their full 0x80-0xBF, so every piece is a plain sequence
    /// of byte ranges (the usual construction of UTF-8 range automata). Surrogates are skipped.
    /// </summary>
    public Expr ToExpr()
    {
        var pieces = new List<Expr>();
        foreach (var (lo, hi) in _ranges)
        {
            if (lo <= 0xD7FF) Split(lo, Math.Min(hi, 0xD7FF), pieces);
            if (hi >= 0xE000) Split(Math.Max(lo, 0xE000), hi, pieces);
        }
        return X.Alt(pieces.ToArray());
    }

    private static readonly int[] LengthEnds = [0x7F, 0x7FF, 0xFFFF, MaxCodePoint];

    // Iterative over a small work stack: the splits below never nest deeper than a few levels.
    private static void Split(int lo, int hi, List<Expr> into)
    {
        if (lo > hi) return;
        var work = new Stack<(int, int)>();
        work.Push((lo, hi));
        Span<byte> ea = stackalloc byte[4], eb = stackalloc byte[4];
        while (work.Count > 0)
        {
            var (a, b) = work.Pop();
            bool split = false;
            foreach (int end in LengthEnds)
            {
                if (a <= end && b > end) { work.Push((end + 1, b)); work.Push((a, end)); split = true; break; }
            }
            if (split) continue;
            int n = Utf8Length(a);
            for (int i = 1; i < n && !split; i++)
            {
                int m = (1 << (6 * i)) - 1;
                if ((a & ~m) == (b & ~m)) continue;
                if ((a & m) != 0) { work.Push(((a | m) + 1, b)); work.Push((a, a | m)); split = true; }
                else if ((b & m) != m) { work.Push((b & ~m, b)); work.Push((a, (b & ~m) - 1)); split = true; }
            }
            if (split) continue;
            Encode(a, ea);
            Encode(b, eb);
            var seq = new Expr[n];
            for (int i = 0; i < n; i++) seq[i] = new ByteExpr(ea[i], eb[i]);
            into.Add(X.Seq(seq));
        }
    }

    private static int Utf8Length(int c) => c <= 0x7F ? 1 : c <= 0x7FF ? 2 : c <= 0xFFFF ? 3 : 4;

    private static void Encode(int c, Span<byte> b)
    {
        switch (Utf8Length(c))
        {
            case 1: b[0] = (byte)c; break;
            case 2: b[0] = (byte)(0xC0 | c >> 6); b[1] = (byte)(0x80 | c & 0x3F); break;
            case 3: b[0] = (byte)(0xE0 | c >> 12); b[1] = (byte)(0x80 | c >> 6 & 0x3F); b[2] = (byte)(0x80 | c & 0x3F); break;
            default:
                b[0] = (byte)(0xF0 | c >> 18); b[1] = (byte)(0x80 | c >> 12 & 0x3F);
                b[2] = (byte)(0x80 | c >> 6 & 0x3F); b[3] = (byte)(0x80 | c & 0x3F); break;
        }
    }
}
