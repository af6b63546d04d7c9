using Pagoda.Requests;

namespace Pagoda.Sampling;

/// <summary>
/// The per-request edits applied to raw logits before sampling, in vLLM's order: allowed tokens, then the sparse
/// edits (bad words, min_tokens, logit bias), then repetition / frequency / presence penalties. The sparse edits
/// and the penalties are per-token and independent, which is what lets the device apply the same lists
/// (<see cref="DeviceSampling"/>) with the same float arithmetic.
/// </summary>
public static class LogitsProcessors
{
    /// <summary>Applies every edit the request's parameters ask for.</summary>
    public static void Apply(Span<float> logits, Request req)
    {
        var p = req.Params;
        if (p.AllowedTokenIds is { } allowed)
            KeepOnly(logits, allowed);
        foreach (var (id, add) in SparseEdits(req))
        {
            if ((uint)id < (uint)logits.Length)
                logits[id] += add;
        }
        if (HasPenalties(p))
        {
            var pairs = req.Counts.Pairs;
            for (int i = 0; i < pairs.Length; i += 2)
            {
                int id = pairs[i];
                if ((uint)id < (uint)logits.Length)
                    logits[id] = Penalize(logits[id], p, pairs[i + 1]);
            }
        }
    }

    /// <summary>
    /// A grammar's allowed-token bitmask (bit i of word w: token 32w + i): tokens whose bit is clear, and tokens past
    /// the mask (the model's vocabulary may be wider than the grammar's), can never be sampled.
    /// </summary>
    public static void ApplyMask(Span<float> logits, ReadOnlySpan<int> mask)
    {
        for (int w = 0; w < mask.Length; w++)
        {
            int bits = mask[w];
            if (bits == -1)
                continue;
            int end = Math.Min(logits.Length, (w + 1) * 32);
            for (int i = w * 32; i < end; i++)
            {
                if ((bits & (1 << (i & 31))) == 0)
                    logits[i] = float.NegativeInfinity;
            }
        }
        if (mask.Length * 32 < logits.Length)
            logits[(mask.Length * 32)..].Fill(float.NegativeInfinity);
    }

    /// <summary>Whether any of the three penalties is on.</summary>
    public static bool HasPenalties(SamplingParams p) => p.RepetitionPenalty != 1.0 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0;

    /// <summary>
    /// One token's penalised logit: the repetition penalty for any token of the prompt or output (divide a
    /// positive logit, multiply a negative one), then count·frequency + presence for an output token.
    /// </summary>
    public static float Penalize(float logit, SamplingParams p, int outputCount)
    {
        float r = (float)p.RepetitionPenalty;
        if (r != 1f)
            logit = logit > 0 ? logit / r : logit * r;
        if (outputCount > 0)
            logit -= (float)p.FrequencyPenalty * outputCount + (float)p.PresencePenalty;
        return logit;
    }

    /// <summary>
    /// The step's additions to single logits, one per token: -inf for a banned token (the last token of a bad
    /// word whose prefix the output ends with; EOS and stop tokens before min_tokens), else its logit bias.
    /// </summary>
    public static IReadOnlyDictionary<int, float> SparseEdits(Request req)
    {
        var p = req.Params;
        if (p.LogitBias is null && req.BadWordsTokenIds is not { Count: > 0 } && req.NumOutputTokens >= p.MinTokens)
            return NoEdits;
        var edits = new Dictionary<int, float>();
        if (p.LogitBias is { } bias)
        {
            foreach (var (id, b) in bias)
                edits[id] = edits.GetValueOrDefault(id) + (float)b;
        }
        if (req.BadWordsTokenIds is { Count: > 0 } badWords)
            BanBadWords(edits, badWords, req.AllTokenIds, req.PromptTokenIds.Length);
        if (req.NumOutputTokens < p.MinTokens)
        {
            if (!p.IgnoreEos)
                Ban(edits, req.EosTokenIds);
            Ban(edits, p.StopTokenIds);
        }
        return edits;
    }

    private static readonly Dictionary<int, float> NoEdits = [];

    private static void Ban(Dictionary<int, float> edits, IEnumerable<int> ids)
    {
        foreach (int id in ids)
            edits[id] = float.NegativeInfinity;
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
    private static void BanBadWords(Dictionary<int, float> edits, IReadOnlyList<int[]> badWords, IReadOnlyList<int> all, int promptLength)
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
            if (matches)
                edits[word[^1]] = float.NegativeInfinity;
        }
    }
}
