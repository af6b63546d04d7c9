namespace Pagoda.Tokenization;

/// <summary>Transforms text before pre-tokenization (HF "normalizer").</summary>
internal abstract class Normalizer
{
    public abstract string Apply(string s);
}

internal sealed class NfcNormalizer : Normalizer
{
    public override string Apply(string s) => UnicodeNfc.Normalize(s);
}

internal sealed class SequenceNormalizer(IReadOnlyList<Normalizer> steps) : Normalizer
{
    public override string Apply(string s)
    {
        foreach (var step in steps) s = step.Apply(s);
        return s;
    }
}

/// <summary>HF "Prepend": adds a prefix to non-empty text.</summary>
internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Apply(string s) => s.Length == 0 ? s : prefix + s;
}

/// <summary>HF "Replace": replaces every match of a literal or regex pattern.</summary>
internal sealed class ReplaceNormalizer(HfRegex pattern, string content) : Normalizer
{
    public override string Apply(string s)
    {
        var matches = pattern.Matches(s);
        if (matches.Count == 0) return s;
        var sb = new System.Text.StringBuilder(s.Length);
        int prev = 0;
        foreach (var (start, end) in matches)
        {
            sb.Append(s, prev, start - prev).Append(content);
            prev = end;
        }
        return sb.Append(s, prev, s.Length - prev).ToString();
    }
}
