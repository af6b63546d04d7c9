using Pagoda.Tokenization;

namespace Pagoda.Engine;

/// <summary>Turns bad words into the token sequences the sampler bans, as vLLM does.</summary>
internal static class BadWords
{
    /// <summary>
    /// Each word as encoded alone, plus its leading-space form when that is a different word start of the
    /// same length (so " word" mid-sentence is banned too).
    /// </summary>
    public static IReadOnlyList<int[]>? TokenIds(Tokenizer tokenizer, IReadOnlyList<string>? words)
    {
        if (words is null || words.Count == 0)
            return null;
        var result = new List<int[]>();
        foreach (string word in words)
        {
            int[] plain = tokenizer.Encode(word.TrimStart(), addSpecialTokens: false).ToArray();
            if (plain.Length == 0)
                continue;
            result.Add(plain);
            int[] spaced = tokenizer.Encode(" " + word.TrimStart(), addSpecialTokens: false).ToArray();
            if (spaced.Length == plain.Length && spaced[0] != plain[0])
                result.Add(spaced);
        }
        return result;
    }
}
