using System.Text;

namespace Pagoda.Engine;

/// <summary>Stop-string matching on the text as it grows (vLLM's check_stop_strings).</summary>
internal static class StopStrings
{
    /// <summary>
    /// Looks for a stop string ending inside the newest <paramref name="newChars"/> characters. Returns where
    /// to cut the text and the matched string, or (text length, null) when none matched.
    /// </summary>
    public static (int Cut, string? Stop) Find(StringBuilder text, int newChars, SamplingParams p)
    {
        if (p.Stop.Count == 0 || newChars == 0)
            return (text.Length, null);
        // Only the tail can hold a match that ends in the new characters: search a copy of just that.
        int longest = 0;
        foreach (string stop in p.Stop)
            longest = Math.Max(longest, stop.Length);
        int start = Math.Max(0, text.Length - newChars - longest + 1);
        string tail = text.ToString(start, text.Length - start);
        int best = int.MaxValue;
        string? found = null;
        foreach (string stop in p.Stop)
        {
            int from = Math.Max(0, text.Length - newChars - stop.Length + 1) - start;
            int at = tail.IndexOf(stop, from, StringComparison.Ordinal);
            if (at >= 0 && at < best)
                (best, found) = (at, stop);
        }
        if (found == null)
            return (text.Length, null);
        best += start;
        return (p.IncludeStopStrInOutput ? best + found.Length : best, found);
    }

    /// <summary>Characters to keep back from a stream: the longest stop string could still be forming there.</summary>
    public static int HoldBack(SamplingParams p) =>
        p.Stop.Count == 0 || p.IncludeStopStrInOutput ? 0 : p.Stop.Max(s => s.Length) - 1;
}
