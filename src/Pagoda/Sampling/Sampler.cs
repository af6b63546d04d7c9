namespace Pagoda.Sampling;

/// <summary>
/// Picks the next token from one row of processed logits: greedy argmax, or temperature → min-p →
/// top-k → top-p → one draw from the request's own generator (so the draw does not depend on the batch).
/// </summary>
public static class Sampler
{
    /// <summary>Samples a token id from logits already edited by <see cref="LogitsProcessors"/>.</summary>
    public static int Sample(ReadOnlySpan<float> logits, SamplingParams p, Random rng)
    {
        if (p.IsGreedy)
            return ArgMax(logits);
        var probs = Probabilities(logits, p.Temperature);
        int[] order = SortedCandidates(probs);
        int keep = Filter(probs, order, p);
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

    /// <summary>
    /// The distribution <see cref="Sample"/> draws from (for tests): temperature softmax restricted by
    /// min-p, top-k and top-p and renormalised.
    /// </summary>
    public static double[] Distribution(ReadOnlySpan<float> logits, SamplingParams p)
    {
        var probs = Probabilities(logits, p.Temperature);
        int[] order = SortedCandidates(probs);
        int keep = Filter(probs, order, p);
        var result = new double[probs.Length];
        double mass = 0;
        for (int i = 0; i < keep; i++)
            mass += probs[order[i]];
        for (int i = 0; i < keep; i++)
            result[order[i]] = probs[order[i]] / mass;
        return result;
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

    private static double[] Probabilities(ReadOnlySpan<float> logits, double temperature)
    {
        var probs = new double[logits.Length];
        double max = double.NegativeInfinity;
        foreach (float v in logits)
            max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < probs.Length; i++)
        {
            probs[i] = Math.Exp((logits[i] - max) / temperature);
            sum += probs[i];
        }
        for (int i = 0; i < probs.Length; i++)
            probs[i] /= sum;
        return probs;
    }

    // Candidates by descending probability (ties by id), so every filter is a prefix cut.
    private static int[] SortedCandidates(double[] probs)
    {
        int[] order = new int[probs.Length];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        Array.Sort(order, (a, b) => probs[b] != probs[a] ? probs[b].CompareTo(probs[a]) : a.CompareTo(b));
        return order;
    }

    private static int Filter(double[] probs, int[] order, SamplingParams p)
    {
        int keep = order.Length;
        while (keep > 1 && probs[order[keep - 1]] == 0)
            keep--;
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
        return keep;
    }
}
