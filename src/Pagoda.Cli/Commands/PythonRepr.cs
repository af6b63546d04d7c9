using System.Globalization;
using System.Text;

namespace Pagoda.Cli.Commands;

/// <summary>Python's repr() of a str, so printed prompts and outputs read exactly as vLLM's examples print them.</summary>
internal static class PythonRepr
{
    public static string Of(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        foreach (var rune in s.EnumerateRunes())
        {
            int v = rune.Value;
            if (v == quote || v == '\\')
                sb.Append('\\').Append((char)v);
            else if (v == '\n')
                sb.Append("\\n");
            else if (v == '\r')
                sb.Append("\\r");
            else if (v == '\t')
                sb.Append("\\t");
            else if (v < 0x20 || v == 0x7f)
                sb.Append("\\x").Append(v.ToString("x2", CultureInfo.InvariantCulture));
            else if (v < 0x7f || IsPrintable(rune))
                sb.Append(rune.ToString());
            else if (v <= 0xff)
                sb.Append("\\x").Append(v.ToString("x2", CultureInfo.InvariantCulture));
            else if (v <= 0xffff)
                sb.Append("\\u").Append(v.ToString("x4", CultureInfo.InvariantCulture));
            else
                sb.Append("\\U").Append(v.ToString("x8", CultureInfo.InvariantCulture));
        }
        return sb.Append(quote).ToString();
    }

    // str.isprintable(): everything but controls, format, surrogates, private use, unassigned and
    // separators other than the ASCII space.
    private static bool IsPrintable(Rune r) => Rune.GetUnicodeCategory(r) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
            or UnicodeCategory.SpaceSeparator => false,
        _ => true,
    };
}
