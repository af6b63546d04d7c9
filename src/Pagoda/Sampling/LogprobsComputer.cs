namespace Pagoda.Sampling;

/// <summary>
/// Natural-log softmax of raw logits (before any sampling transform, as vLLM's default
/// `raw_logprobs`), computed in double so top-K values are stable to far below 1e-4.
/// </summary>
public static class LogprobsComputer
{
    /// <summary>log_softmax(logits) into <paramref name="destination"/>.</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> destination)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in logits)
            sum += Math.Exp(v - max);
        double logSum = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++)
            destination[i] = logits[i] - logSum;
    }

    /// <summary>The token's logprob, rank and the top <paramref name="k"/> (ties broken by lower id).</summary>
    public static TokenLogprob Describe(ReadOnlySpan<double> logprobs, int tokenId, int k)
    {
        double chosen = logprobs[tokenId];
        int rank = 1;
        foreach (double v in logprobs)
        {
            if (v > chosen)
                rank++;
        }
        return new TokenLogprob(tokenId, chosen, rank, TopK(logprobs, k));
    }

    /// <summary>The <paramref name="k"/> largest entries, best first.</summary>
    public static IReadOnlyList<TopLogprob> TopK(ReadOnlySpan<double> values, int k)
    {
        k = Math.Min(k, values.Length);
        if (k <= 0)
            return [];
        // A small sorted insertion buffer: k is tiny next to the vocabulary.
        var ids = new int[k];
        var vals = new double[k];
        int count = 0;
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            if (count == k && v <= vals[k - 1])
                continue;
            int pos = count < k ? count++ : k - 1;
            while (pos > 0 && vals[pos - 1] < v)
            {
                vals[pos] = vals[pos - 1];
                ids[pos] = ids[pos - 1];
                pos--;
            }
            vals[pos] = v;
            ids[pos] = i;
        }
        var result = new TopLogprob[count];
        for (int i = 0; i < count; i++)
            result[i] = new TopLogprob(ids[i], vals[i]);
        return result;
    }
}
