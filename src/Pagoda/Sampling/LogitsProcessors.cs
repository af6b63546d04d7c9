using Pagoda.Requests;

namespace Pagoda.Sampling;

/// <summary>
/// The per-request edits applied to raw logits before sampling, in vLLM's order: allowed tokens,
/// bad words, min_tokens, logit bias, then repetition / frequency / presence penalties.
/// </summary>
public static class LogitsProcessors
{
    /// <summary>Applies every edit the request's parameters ask for.</summary>
    public static void Apply(Span<float> logits, Request req, IReadOnlyList<int[]>? badWords)
    {
        var p = req.Params;
        if (p.AllowedTokenIds is { } allowed)
            KeepOnly(logits, allowed);
        if (badWords is { Count: > 0 })
            BanBadWords(logits, badWords, req.AllTokenIds, req.PromptTokenIds.Length);
        if (req.NumOutputTokens < p.MinTokens)
        {
            if (!p.IgnoreEos)
                Ban(logits, req.EosTokenIds);
            Ban(logits, p.StopTokenIds);
        }
        if (p.LogitBias is { } bias)
        {
            foreach (var (id, b) in bias)
                logits[id] += (float)b;
        }
        if (p.RepetitionPenalty != 1.0 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0)
            ApplyPenalties(logits, p, req.AllTokenIds, req.PromptTokenIds.Length);
    }

    private static void Ban(Span<float> logits, IEnumerable<int> ids)
    {
        foreach (int id in ids)
        {
            if ((uint)id < (uint)logits.Length)
                logits[id] = float.NegativeInfinity;
        }
    }

    private static void KeepOnly(Span<float> logits, IReadOnlyList<int> allowed)
    {
        var keep = new float[allowed.Count];
        for (int i = 0; i < allowed.Count; i++)
            keep[i] = logits[allowed[i]];
        logits.Fill(float.NegativeInfinity);
        for (int i = 0; i < allowed.Count; i++)
            logits[allowed[i]] = keep[i];
    }

    /// <summary>A word's last token is banned when the output ends with the rest of the word.</summary>
    private static void BanBadWords(Span<float> logits, IReadOnlyList<int[]> badWords, IReadOnlyList<int> all, int promptLength)
    {
        int outputLength = all.Count - promptLength;
        foreach (var word in badWords)
        {
            int prefix = word.Length - 1;
            if (prefix > outputLength)
                continue;
            bool matches = true;
            for (int i = 0; i < prefix && matches; i++)
                matches = all[all.Count - prefix + i] == word[i];
            if (matches && (uint)word[^1] < (uint)logits.Length)
                logits[word[^1]] = float.NegativeInfinity;
        }
    }

    /// <summary>
    /// Repetition penalty over prompt and output tokens (divide positive, multiply negative logits);
    /// frequency and presence penalties over output tokens only (subtract count·f and p).
    /// </summary>
    public static void ApplyPenalties(Span<float> logits, SamplingParams p, IReadOnlyList<int> all, int promptLength)
    {
        var outputCounts = new Dictionary<int, int>();
        for (int i = promptLength; i < all.Count; i++)
            outputCounts[all[i]] = outputCounts.GetValueOrDefault(all[i]) + 1;
        if (p.RepetitionPenalty != 1.0)
        {
            var seen = new HashSet<int>(outputCounts.Keys);
            for (int i = 0; i < promptLength; i++)
                seen.Add(all[i]);
            float r = (float)p.RepetitionPenalty;
            foreach (int id in seen)
            {
                if ((uint)id < (uint)logits.Length)
                    logits[id] = logits[id] > 0 ? logits[id] / r : logits[id] * r;
            }
        }
        foreach (var (id, count) in outputCounts)
        {
            if ((uint)id < (uint)logits.Length)
                logits[id] -= (float)(p.FrequencyPenalty * count + p.PresencePenalty);
        }
    }
}
