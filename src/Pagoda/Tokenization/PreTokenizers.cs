namespace Pagoda.Tokenization;

/// <summary>Splits normalized text into pre-tokens (words) that BPE then encodes one by one.</summary>
internal abstract class PreTokenizer
{
    /// <summary>Replaces every piece with the pieces it splits into (empty ones dropped).</summary>
    /// <param name="pieces">The pieces to split.</param>
    /// <param name="startsText">Whether the first piece begins at the start of the encoded text
    /// (Metaspace's "first" scheme prepends only there).</param>
    public abstract List<string> Apply(List<string> pieces, bool startsText);
}

internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> steps) : PreTokenizer
{
    public override List<string> Apply(List<string> pieces, bool startsText)
    {
        foreach (var step in steps) pieces = step.Apply(pieces, startsText);
        return pieces;
    }
}

/// <summary>HF's SplitDelimiterBehavior.</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>HF "Split": cuts each piece at pattern matches, keeping them per the behaviour.</summary>
internal sealed class SplitPreTokenizer(HfRegex regex, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override List<string> Apply(List<string> pieces, bool startsText)
    {
        var output = new List<string>(pieces.Count * 4);
        foreach (var piece in pieces) Split(piece, regex, behavior, invert, output);
        return output;
    }

    public static void Split(string s, HfRegex regex, SplitBehavior behavior, bool invert, List<string> output)
    {
        // Alternate the text into (span, isDelimiter) runs, as HF's Pattern::find_matches does.
        var runs = new List<(int Start, int End, bool Match)>();
        int prev = 0;
        foreach (var (start, end) in regex.Matches(s))
        {
            if (start > prev) runs.Add((prev, start, invert));
            runs.Add((start, end, !invert));
            prev = end;
        }
        if (prev < s.Length) runs.Add((prev, s.Length, invert));

        var spans = new List<(int Start, int End)>(runs.Count);
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                spans.AddRange(runs.Select(r => (r.Start, r.End)));
                break;
            case SplitBehavior.Removed:
                spans.AddRange(runs.Where(r => !r.Match).Select(r => (r.Start, r.End)));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var r in runs)
                {
                    if (r.Match && spans.Count > 0) spans[^1] = (spans[^1].Start, r.End);
                    else spans.Add((r.Start, r.End));
                }
                break;
            case SplitBehavior.MergedWithNext:
                bool pendingMatch = false;
                foreach (var r in runs)
                {
                    if (pendingMatch) spans[^1] = (spans[^1].Start, r.End);
                    else spans.Add((r.Start, r.End));
                    pendingMatch = r.Match;
                }
                break;
            case SplitBehavior.Contiguous:
                bool lastMatch = false;
                foreach (var r in runs)
                {
                    if (r.Match && lastMatch) spans[^1] = (spans[^1].Start, r.End);
                    else spans.Add((r.Start, r.End));
                    lastMatch = r.Match;
                }
                break;
        }
        foreach (var (start, end) in spans)
            if (end > start) output.Add(s[start..end]);
    }
}

/// <summary>
/// HF "ByteLevel": optionally adds a leading space to every piece, optionally splits with the GPT-2
/// regex, then maps each piece's UTF-8 bytes to the printable byte alphabet.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    private static readonly Lazy<HfRegex> Gpt2 = new(() => new HfRegex(ByteLevel.Gpt2Pattern));

    public override List<string> Apply(List<string> pieces, bool startsText)
    {
        var output = new List<string>(pieces.Count);
        var split = new List<string>();
        foreach (var original in pieces)
        {
            string piece = addPrefixSpace && !original.StartsWith(' ') ? " " + original : original;
            split.Clear();
            if (useRegex) SplitPreTokenizer.Split(piece, Gpt2.Value, SplitBehavior.Isolated, false, split);
            else split.Add(piece);
            foreach (var s in split) output.Add(ByteLevel.Encode(s));
        }
        return output;
    }
}

/// <summary>HF's Metaspace prepend_scheme: when a leading replacement character is added.</summary>
internal enum PrependScheme { Always, First, Never }

/// <summary>
/// HF "Metaspace" (SentencePiece style): spaces become the replacement character (▁), a leading one is
/// added per the scheme unless the piece already starts with it, and with split each ▁ starts a new piece.
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    public override List<string> Apply(List<string> pieces, bool startsText)
    {
        var output = new List<string>(pieces.Count);
        for (int i = 0; i < pieces.Count; i++)
        {
            // HF cannot prepend to an empty string, so "" stays "" (and encodes to nothing).
            if (pieces[i].Length == 0) continue;
            string piece = pieces[i].Replace(' ', replacement);
            bool prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && i == 0 && startsText);
            if (prepend && piece[0] != replacement) piece = replacement + piece;
            if (!split)
            {
                output.Add(piece);
                continue;
            }
            int start = 0;
            for (int j = 1; j < piece.Length; j++)
            {
                if (piece[j] != replacement) continue;
                output.Add(piece[start..j]);
                start = j;
            }
            output.Add(piece[start..]);
        }
        return output;
    }
}
