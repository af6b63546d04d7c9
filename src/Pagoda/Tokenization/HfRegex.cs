using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Pagoda.Tokenization;

/// <summary>
/// A tokenizer.json regex run with .NET Regex. HF (Oniguruma) matches code points, .NET matches
/// UTF-16 units, so \p{L} never matches a surrogate half: before matching, each astral code point is
/// replaced by a BMP stand-in of the same general category and match offsets are mapped back.
/// </summary>
internal sealed class HfRegex
{
    private static readonly char[] StandIns = BuildStandIns();
    private readonly Regex _regex;

    public HfRegex(string pattern)
    {
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    public string Pattern => _regex.ToString();

    /// <summary>Non-empty matches as [start, end) offsets into <paramref name="s"/>.</summary>
    public List<(int Start, int End)> Matches(string s)
    {
        var result = new List<(int, int)>();
        int firstSurrogate = s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            // EnumerateMatches allocates no Match objects, which matters at a match per word.
            foreach (var m in _regex.EnumerateMatches(s))
                if (m.Length > 0) result.Add((m.Index, m.Index + m.Length));
            return result;
        }

        var mapped = new StringBuilder(s.Length);
        var origin = new List<int>(s.Length + 1);
        for (int i = 0; i < s.Length; i++)
        {
            origin.Add(i);
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                var cat = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(s[i], s[i + 1]));
                mapped.Append(StandIns[(int)cat]);
                i++;
            }
            else
            {
                mapped.Append(s[i]);
            }
        }
        origin.Add(s.Length);
        foreach (var m in _regex.EnumerateMatches(mapped.ToString()))
            if (m.Length > 0) result.Add((origin[m.Index], origin[m.Index + m.Length]));
        return result;
    }

    // One BMP character per general category, away from the CJK/kana blocks that patterns name
    // explicitly and from characters that case-fold onto ASCII letters (ſ, K, İ, ı).
    private static char[] BuildStandIns()
    {
        var table = new char[32];
        var found = new bool[32];
        for (int c = 0xA0; c < 0x10000; c++)
        {
            if (c is >= 0x2E80 and <= 0xA4CF or >= 0xD800 and <= 0xDFFF or >= 0xF900 and <= 0xFAFF
                or 0x17F or 0x212A or 0x212B or 0x130 or 0x131)
                continue;
            int cat = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[cat]) { found[cat] = true; table[cat] = (char)c; }
        }
        for (int i = 0; i < table.Length; i++)
            if (!found[i]) table[i] = '\uFFFD';
        return table;
    }
}
