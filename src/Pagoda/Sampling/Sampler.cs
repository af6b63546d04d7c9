using System.Buffers;
using System.Runtime.Intrinsics;
using Pagoda.Backends.Cpu;

namespace Pagoda.Sampling;

/// <summary>
/// Picks the next token from one row of processed logits: greedy argmax, or temperature → min-p →
/// top-k → top-p → one draw with the uniform <c>u</c> the caller gives (the request's own Philox draw for its
/// position, so it does not depend on the batch).
/// Only a top-k's candidates are sorted (and drawn in that order); without a top-k, min-p and top-p cut the row
/// by a radix select (<see cref="Nucleus"/>) and the draw walks the row in id order, as the device does.
/// </summary>
public static class Sampler
{
    /// <summary>Samples a token id from logits already edited by <see cref="LogitsProcessors"/>.</summary>
    public static int Sample(ReadOnlySpan<float> logits, SamplingParams p, double u)
    {
        if (p.IsGreedy)
            return ArgMax(logits);
        if (!(p.TopK > 0 && p.TopK < logits.Length))
            return DrawRow(logits, (float)(1 / p.Temperature), u, (float)p.TopP, (float)p.MinP).Token;
        var (ids, weights, keep) = Candidates(logits, p);
        return Draw(ids, weights, keep, u);
    }

    private static float Max(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits)
            max = MathF.Max(max, v);
        return max;
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

    /// <summary>
    /// A top-k's candidate ids with unnormalised weights exp((logit - max) / T); the first <c>keep</c> survive the
    /// filters. Candidates come sorted by descending logit, so each filter is a prefix cut.
    /// </summary>
    private static (int[] Ids, double[] Weights, int Keep) Candidates(ReadOnlySpan<float> logits, SamplingParams p)
    {
        int[] ids = TopKIds(logits, p.TopK);
        float max = logits[ids[0]];   // the best candidate is the row's largest logit
        var weights = new double[ids.Length];
        for (int i = 0; i < ids.Length; i++)
            weights[i] = Math.Exp((logits[ids[i]] - max) / p.Temperature);
        return (ids, weights, Cut(weights, p));
    }

    /// <summary>How many of the sorted candidates survive min-p and top-p (weights relative to the best).</summary>
    private static int Cut(ReadOnlySpan<double> weights, SamplingParams p)
    {
        int keep = weights.Length;
        while (keep > 1 && weights[keep - 1] == 0)
            keep--;
        if (p.MinP > 0)
        {
            // Weights are relative to the best token (weight 1), so min-p compares them directly.
            while (keep > 1 && weights[keep - 1] < p.MinP)
                keep--;
        }
        if (p.TopP < 1.0)
        {
            double total = 0;
            for (int i = 0; i < keep; i++)
                total += weights[i];
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += weights[i];
                if (cumulative >= p.TopP * total)
                {
                    keep = i + 1;
                    break;
                }
            }
        }
        return keep;
    }

    /// <summary>
    /// <see cref="Sample"/> given only the row's best candidates (values best first, ties by lower id, at
    /// least max(1, top_k) of them); valid for greedy and for a top-k the candidates hold.
    /// </summary>
    public static int SampleCandidates(ReadOnlySpan<float> values, ReadOnlySpan<int> ids, SamplingParams p, double u)
    {
        if (p.IsGreedy)
            return ids[0];
        int n = Math.Min(p.TopK, values.Length);
        // A device step picks among at most 64 candidates for every sampled row: on the stack, not an array a row.
        Span<double> weights = n <= 64 ? stackalloc double[n] : new double[n];
        for (int i = 0; i < n; i++)
            weights[i] = Math.Exp((values[i] - values[0]) / p.Temperature);
        int keep = Cut(weights, p);
        return Draw(ids, weights, keep, u);
    }

    // Without a top-k: one draw over the whole vocabulary by weights exp((logit - max) / T), eight at a time in
    // float32 (as vLLM's softmax) into a pooled buffer, after min-p and top-p zero the weights they cut. A general
    // path of id and double arrays per row was 1.8 MB of large-object allocations and a scalar exp per logit:
    // ~3 ms a row of a 152K vocabulary, a third of a 32-sequence CPU decode step (and a sort of the row with top-p).
    // The mass is what the draw spreads u over: the kept tokens'.
    internal static (int Token, double Mass) DrawRow(ReadOnlySpan<float> logits, float invTemperature, double uniform,
        float topP = 1f, float minP = 0f)
    {
        int n = logits.Length;
        float max = Max(logits);
        float[] weights = ArrayPool<float>.Shared.Rent(n);
        try
        {
            var m8 = Vector256.Create(max);
            var t8 = Vector256.Create(invTemperature);
            double mass = 0;
            int i = 0;
            for (; i + 8 <= n; i += 8)
            {
                var w = VecExp.Exp((Vector256.Create(logits.Slice(i, 8)) - m8) * t8);
                w.CopyTo(weights.AsSpan(i));
                mass += Vector256.Sum(w);
            }
            for (; i < n; i++)
                mass += weights[i] = VecExp.Exp((logits[i] - max) * invTemperature);
            if (topP < 1f || minP > 0)
                mass = Filter(logits, weights.AsSpan(0, n), topP, minP);
            double u = uniform * mass;
            int last = 0;
            for (i = 0; i < n; i++)
            {
                if (weights[i] == 0)
                    continue;
                last = i;
                u -= weights[i];
                if (u < 0)
                    return (i, mass);
            }
            return (last, mass);   // rounding left a sliver of mass: the last token that has weight
        }
        finally
        {
            ArrayPool<float>.Shared.Return(weights);
        }
    }

    // Zeroes the weights min-p and top-p cut; returns the mass left.
    private static double Filter(ReadOnlySpan<float> logits, Span<float> weights, float topP, float minP)
    {
        var cut = Nucleus.Find(logits, weights, topP, minP);
        double mass = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] < minP || !cut.Keeps(Nucleus.OrderKey(logits[i]), i))
                weights[i] = 0;
            mass += weights[i];
        }
        return mass;
    }

    // One uniform draw over the first `keep` candidates, in their order.
    private static int Draw(ReadOnlySpan<int> ids, ReadOnlySpan<double> weights, int keep, double uniform)
    {
        double mass = 0;
        for (int i = 0; i < keep; i++)
            mass += weights[i];
        double u = uniform * mass;
        for (int i = 0; i < keep; i++)
        {
            u -= weights[i];
            if (u < 0)
                return ids[i];
        }
        return ids[keep - 1];
    }

    // All ids by descending logit, ties by id (a primitive-key sort: no comparison delegate per element).
    internal static int[] SortAll(ReadOnlySpan<float> logits)
    {
        var keys = new long[logits.Length];
        for (int i = 0; i < keys.Length; i++)
            keys[i] = OrderKey(logits[i], i);
        Array.Sort(keys);
        var ids = new int[keys.Length];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = (int)(keys[i] & 0xFFFFFFFF);
        return ids;
    }

    // The k largest logits in O(V log k) with a bounded min-heap, then sorted. Once the heap is full, a logit below
    // its worst one cannot enter, which one float compare tells (ties still go through the keys: the lower id wins).
    private static int[] TopKIds(ReadOnlySpan<float> logits, int k)
    {
        var heap = new PriorityQueue<int, long>(k + 1);
        float worstValue = float.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++)
        {
            if (heap.Count == k && logits[i] < worstValue)
                continue;
            long key = -OrderKey(logits[i], i); // heap root = the worst kept candidate
            if (heap.Count < k)
                heap.Enqueue(i, key);
            else if (heap.TryPeek(out _, out long worst) && key > worst)
                heap.EnqueueDequeue(i, key);
            else
                continue;
            if (heap.Count == k && heap.TryPeek(out int root, out _))
                worstValue = logits[root];
        }
        var keys = new long[heap.Count];
        int n = 0;
        while (heap.TryDequeue(out int id, out _))
            keys[n++] = OrderKey(logits[id], id);
        Array.Sort(keys);
        return keys.Select(x => (int)(x & 0xFFFFFFFF)).ToArray();
    }

    // Ascending key = descending logit, then ascending id. The float's bits are made order-preserving.
    private static long OrderKey(float logit, int id)
    {
        int bits = BitConverter.SingleToInt32Bits(logit);
        int ordered = bits >= 0 ? bits : bits ^ int.MaxValue; // monotone in the float's value
        return ((long)~ordered << 32) | (uint)id;
    }
}
