namespace Pagoda.SpecDecode;

/// <summary>
/// Prompt lookup (vLLM's NgramProposer): the longest suffix of the context, between <paramref name="minN"/> and
/// <paramref name="maxN"/> tokens, that occurred earlier in it (the earliest such occurrence when several are as
/// long), proposes the tokens that followed that occurrence, at most <c>k</c> and never past the context's end.
/// </summary>
public sealed class NgramProposer(int minN, int maxN)
{
    /// <summary>Up to <paramref name="k"/> drafts to follow <paramref name="tokens"/> (none when no suffix recurs).</summary>
    public int[] Propose(ReadOnlySpan<int> tokens, int k)
    {
        int length = tokens.Length;
        if (k <= 0 || length < minN + 1)
            return [];
        int last = tokens[length - 1];
        int bestLength = 0, bestEnd = -1;
        // e is where an earlier occurrence ends (found by a vectorized search); comparing backwards from it against the
        // suffix gives its length.
        var earlier = tokens[..(length - 1)];
        for (int e = earlier.IndexOf(last); e >= 0;)
        {
            int n = 1;
            while (n < maxN && n <= e && tokens[e - n] == tokens[length - 1 - n])
                n++;
            if (n > bestLength)
                (bestLength, bestEnd) = (n, e);
            if (bestLength == maxN)
                break;   // no later occurrence can be longer, and ties keep the earliest
            int next = earlier[(e + 1)..].IndexOf(last);
            e = next < 0 ? -1 : e + 1 + next;
        }
        if (bestLength < minN)
            return [];
        int count = Math.Min(k, length - 1 - bestEnd);
        var drafts = new int[count];
        for (int i = 0; i < count; i++)
            drafts[i] = tokens[bestEnd + 1 + i];
        return drafts;
    }
}
