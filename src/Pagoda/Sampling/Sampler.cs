namespace Pagoda.Sampling;

/// <summary>
/// Picks the next token from one row of logits in vLLM's order: repetition penalty, then greedy argmax
/// or temperature → min-p → top-k → top-p → a draw from the request's own generator.
/// </summary>
public static class Sampler
{
    /// <summary>Samples a token id. <paramref name="logits"/> is modified in place.</summary>
    public static int Sample(Span<float> logits, SamplingParams p, ReadOnlySpan<int> promptIds, ReadOnlySpan<int> outputIds,
        Random rng)
    {
        if (p.RepetitionPenalty != 1.0)
            ApplyRepetitionPenalty(logits, (float)p.RepetitionPenalty, promptIds, outputIds);
        if (p.IsGreedy)
            return ArgMax(logits);

        int n = logits.Length;
        var probs = new double[n];
        double max = double.NegativeInfinity;
        foreach (float v in logits)
            max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            probs[i] = Math.Exp((logits[i] - max) / p.Temperature);
            sum += probs[i];
        }
        for (int i = 0; i < n; i++)
            probs[i] /= sum;

        // Candidates sorted by probability (descending, ties by id) so the filters are prefix cuts.
        int[] order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (a, b) => probs[b] != probs[a] ? probs[b].CompareTo(probs[a]) : a.CompareTo(b));
        int keep = n;
        if (p.MinP > 0)
        {
            double threshold = p.MinP * probs[order[0]];
            while (keep > 1 && probs[order[keep - 1]] < threshold)
                keep--;
        }
        if (p.TopK > 0)
            keep = Math.Min(keep, p.TopK);
        if (p.TopP < 1.0)
        {
            double total = 0;
            for (int i = 0; i < keep; i++)
                total += probs[order[i]];
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += probs[order[i]];
                if (cumulative >= p.TopP * total)
                {
                    keep = i + 1;
                    break;
                }
            }
        }

        double mass = 0;
        for (int i = 0; i < keep; i++)
            mass += probs[order[i]];
        double u = rng.NextDouble() * mass;
        for (int i = 0; i < keep; i++)
        {
            u -= probs[order[i]];
            if (u < 0)
                return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>Index of the largest logit (lowest index on ties, as torch.argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }

    /// <summary>Penalises every distinct token seen in the prompt or the output once.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, float penalty, ReadOnlySpan<int> promptIds,
        ReadOnlySpan<int> outputIds)
    {
        var seen = new HashSet<int>();
        foreach (int id in promptIds)
            seen.Add(id);
        foreach (int id in outputIds)
            seen.Add(id);
        foreach (int id in seen)
        {
            if ((uint)id < (uint)logits.Length)
                logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
        }
    }
}
