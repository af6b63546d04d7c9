using System.Globalization;

namespace Pagoda.StructuredOutput;

/// <summary>
/// JSON numbers as byte patterns, with bounds. Integers: exact for any bounds within ±(10^18 - 1) (the
/// digit patterns are built from the decimal strings of the bounds); without bounds, at most 18 digits.
/// Numbers: sound but not complete. Every generated value lies within the bounds, and for integer bounds
/// every value of the form i.fff is allowed except those with the bound's own integer part and a nonzero
/// fraction on an exclusive lower side (0 &lt; x allows 1.5 but not 0.5). Bounded numbers have no
/// exponent; fractions have at most 16 digits.
/// </summary>
internal static class JsonNumbers
{
    public const long Limit = 999_999_999_999_999_999; // 18 digits
    private const int FractionDigits = 16;

    private static Expr Fraction => X.Seq(X.Byte('.'), X.Rep(X.Digit, 1, FractionDigits));
    private static Expr ZeroFraction => X.Opt(X.Seq(X.Byte('.'), X.Rep(X.Byte('0'), 1, FractionDigits)));

    /// <summary>Integers in [lo, hi]; null is unbounded.</summary>
    public static Expr Integer(long? lo, long? hi)
    {
        long a = Math.Max(lo ?? -Limit, -Limit), b = Math.Min(hi ?? Limit, Limit);
        if (a > b) return Expr.Never;
        var parts = new List<Expr>();
        if (a < 0) parts.Add(X.Seq(X.Byte('-'), Magnitude(Math.Max(1, b < 0 ? -b : 1), -a)));
        if (b >= 0) parts.Add(Magnitude(Math.Max(a, 0), b));
        return X.Alt(parts.ToArray());
    }

    /// <summary>Numbers within the bounds (see the class comment for what is exact).</summary>
    public static Expr Number(double? lo, double? hi, bool loExclusive, bool hiExclusive)
    {
        if (lo is null && hi is null)
        {
            return X.Seq(X.Opt(X.Byte('-')), Magnitude(0, Limit), X.Opt(Fraction),
                X.Opt(X.Seq(X.OneOf("eE"), X.Opt(X.OneOf("+-")), X.Rep(X.Digit, 1, 3))));
        }
        var parts = new List<Expr>();
        // Non-negative values x in [max(lo, 0), hi].
        if (hi is not double h0 || h0 > 0 || (h0 == 0 && !hiExclusive))
        {
            bool fromZero = lo is not double l0 || l0 < 0;
            parts.Add(Side(fromZero ? 0 : lo!.Value, !fromZero && loExclusive, hi, hiExclusive));
        }
        // Negative values -m, m in [max(-hi, 0), -lo].
        if (lo is not double l1 || l1 < 0)
        {
            bool fromZero = hi is not double h1 || h1 > 0;
            var side = Side(fromZero ? 0 : -hi!.Value, !fromZero && hiExclusive, lo is double l ? -l : null, loExclusive);
            parts.Add(X.Seq(X.Byte('-'), side));
        }
        return X.Alt(parts.ToArray());
    }

    // Magnitudes m in [a, b] (b null: unbounded): i.fff with [i, i+1) inside, or the integer i exactly.
    private static Expr Side(double a, bool aExclusive, double? b, bool bExclusive)
    {
        long anyLo = Clamp(aExclusive ? Math.Floor(a) + 1 : Math.Ceiling(a));
        long anyHi = b is double hb ? Clamp(Math.Floor(hb) - 1) : Limit;
        long intLo = anyLo;
        long intHi = b is double ib ? Clamp(bExclusive ? Math.Ceiling(ib) - 1 : Math.Floor(ib)) : Limit;
        var parts = new List<Expr>();
        if (anyLo <= anyHi) parts.Add(X.Seq(Magnitude(anyLo, anyHi), X.Opt(Fraction)));
        if (intLo <= intHi) parts.Add(X.Seq(Magnitude(intLo, intHi), ZeroFraction));
        return X.Alt(parts.ToArray());
    }

    // Integer-valued bounds to long; below zero means "no magnitude fits" (-1).
    private static long Clamp(double v) => v >= Limit ? Limit : v < 0 ? -1 : (long)v;

    /// <summary>Decimal strings without leading zeros of the integers in [a, b], 0 &lt;= a.</summary>
    public static Expr Magnitude(long a, long b)
    {
        if (a > b) return Expr.Never;
        var parts = new List<Expr>();
        string sa = a.ToString(CultureInfo.InvariantCulture), sb = b.ToString(CultureInfo.InvariantCulture);
        for (int len = sa.Length; len <= sb.Length; len++)
        {
            string lo = len == sa.Length ? sa : "1" + new string('0', len - 1);
            string hi = len == sb.Length ? sb : new string('9', len);
            if (len == 1 && a == 0) lo = "0";
            parts.Add(SameLength(lo, hi));
        }
        return X.Alt(parts.ToArray());
    }

    // Strings of one length between lo and hi inclusive: the classic digit-by-digit split. Depth is the
    // number of digits (at most 19), and each level has one non-trivial branch per side.
    private static Expr SameLength(string lo, string hi)
    {
        if (lo.Length == 0) return Expr.Empty;
        if (lo == hi) return X.Lit(lo);
        int n = lo.Length - 1;
        if (lo[0] == hi[0]) return X.Seq(X.Byte(lo[0]), SameLength(lo[1..], hi[1..]));
        if (lo[1..].All(c => c == '0') && hi[1..].All(c => c == '9'))
            return X.Seq(X.Range(lo[0], hi[0]), X.Rep(X.Digit, n, n));
        var parts = new List<Expr> { X.Seq(X.Byte(lo[0]), SameLength(lo[1..], new string('9', n))) };
        if (hi[0] - lo[0] >= 2) parts.Add(X.Seq(X.Range((char)(lo[0] + 1), (char)(hi[0] - 1)), X.Rep(X.Digit, n, n)));
        parts.Add(X.Seq(X.Byte(hi[0]), SameLength(new string('0', n), hi[1..])));
        return X.Alt(parts.ToArray());
    }
}
