namespace Pagoda.Sampling;

/// <summary>
/// Top-p and min-p over a whole row, without a top-k: the cut of the row's order (descending logit, ties by lower
/// id) that keeps the smallest prefix holding top_p of the mass of the tokens min-p keeps. It is found by a radix
/// select over the logits' order keys, 8 bits a pass, instead of a sort of the vocabulary; masses are summed as
/// integers (weights in units of 2^-40), so the cut does not depend on the order of the sums and the device kernel
/// (sampling.cu, sampling_draw) finds the same one. The draw then walks the kept tokens in id order, as the
/// whole-row draw does (<see cref="Sampler"/>).
/// </summary>
public static class Nucleus
{
    /// <summary>What a cut keeps: tokens whose order key is above <see cref="Key"/>, and those equal to it up to id <see cref="Id"/>.</summary>
    public readonly record struct Cut(uint Key, int Id)
    {
        /// <summary>Every token (what min-p alone leaves to the weights).</summary>
        public static Cut All => new(0, int.MaxValue);

        /// <summary>Whether the token with order key <paramref name="key"/> and id <paramref name="id"/> is kept.</summary>
        public bool Keeps(uint key, int id) => key > Key || key == Key && id <= Id;
    }

    /// <summary>A key that orders logits as unsigned integers: larger logit, larger key.</summary>
    public static uint OrderKey(float logit)
    {
        uint b = BitConverter.SingleToUInt32Bits(logit);
        return (b & 0x8000_0000u) != 0 ? ~b : b | 0x8000_0000u;
    }

    /// <summary>A weight in [0, 1] as an integer mass: units of 2^-40 (a row of 2^23 tokens sums below 2^63).</summary>
    public static ulong Quantum(float weight) => (ulong)(weight * 1_099_511_627_776f);

    /// <summary>
    /// The cut for <paramref name="topP"/> of <paramref name="logits"/>, whose weights exp((logit - max) / T) are
    /// <paramref name="weights"/>; tokens with a weight below <paramref name="minP"/> neither count nor stay.
    /// </summary>
    public static Cut Find(ReadOnlySpan<float> logits, ReadOnlySpan<float> weights, float topP, float minP)
    {
        if (topP >= 1f)
            return Cut.All;
        Span<ulong> mass = stackalloc ulong[256];
        Span<int> count = stackalloc int[256];
        uint prefix = 0;
        ulong above = 0, target = 0;   // above: the mass of keys past the prefix's bucket
        int chosen = 0;
        for (int level = 0; level < 4; level++)
        {
            int shift = 24 - 8 * level;
            mass.Clear();
            count.Clear();
            for (int i = 0; i < logits.Length; i++)
            {
                if (weights[i] < minP)
                    continue;
                uint key = OrderKey(logits[i]);
                if (level > 0 && key >> (shift + 8) != prefix >> (shift + 8))
                    continue;
                int b = (int)(key >> shift) & 255;
                mass[b] += Quantum(weights[i]);
                count[b]++;
            }
            if (level == 0)
            {
                ulong total = 0;
                foreach (ulong m in mass)
                    total += m;
                if (total == 0)
                    return Cut.All;
                target = Math.Max(1, (ulong)Math.Ceiling((double)topP * total));
            }
            // The bucket, from the largest keys down, where the running mass reaches the target.
            for (chosen = 255; chosen > 0 && above + mass[chosen] < target; chosen--)
                above += mass[chosen];
            prefix |= (uint)chosen << shift;
        }
        // The key is exact now; its tokens tie (one logit, one weight): keep as many, in id order, as reach the target.
        int ties = count[chosen];
        ulong each = mass[chosen] / (ulong)ties;
        long need = each == 0 ? ties : (long)Math.Min((ulong)ties, (target - above + each - 1) / each);
        if (need >= ties)
            return new Cut(prefix, int.MaxValue);
        for (int i = 0; i < logits.Length; i++)
        {
            if (weights[i] >= minP && OrderKey(logits[i]) == prefix && --need == 0)
                return new Cut(prefix, i);
        }
        throw new InvalidOperationException("the nucleus cut lost its tie");
    }
}
