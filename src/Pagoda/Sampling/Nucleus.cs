using System.Buffers;

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
    public static ulong Quantum(float weight) => (ulong)(long)(weight * 1_099_511_627_776f);   // via long: one instruction without AVX-512

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
        // The first pass sees the whole row; later ones only the ids left in the chosen bucket (kept in id order).
        int[] left = ArrayPool<int>.Shared.Rent(logits.Length);
        try
        {
            int n = 0;
            uint prefix = 0;
            ulong above = 0, target = 0;   // above: the mass of keys past the chosen bucket
            int chosen = 0;
            for (int level = 0; level < 4; level++)
            {
                int shift = 24 - 8 * level;
                mass.Clear();
                count.Clear();
                if (level == 0)
                {
                    for (int i = 0; i < logits.Length; i++)
                    {
                        if (weights[i] < minP)
                            continue;
                        int b = (int)(OrderKey(logits[i]) >> 24);
                        mass[b] += Quantum(weights[i]);
                        count[b]++;
                    }
                    ulong total = 0;
                    foreach (ulong m in mass)
                        total += m;
                    if (total == 0)
                        return Cut.All;
                    target = Math.Max(1, (ulong)Math.Ceiling((double)topP * total));
                }
                else
                {
                    foreach (int i in left.AsSpan(0, n))
                    {
                        int b = (int)(OrderKey(logits[i]) >> shift) & 255;
                        mass[b] += Quantum(weights[i]);
                        count[b]++;
                    }
                }
                // The bucket, from the largest keys down, where the running mass reaches the target.
                for (chosen = 255; chosen > 0 && above + mass[chosen] < target; chosen--)
                    above += mass[chosen];
                prefix |= (uint)chosen << shift;
                int kept = 0;
                if (level == 0)
                {
                    for (int i = 0; i < logits.Length; i++)
                    {
                        if (weights[i] >= minP && OrderKey(logits[i]) >> 24 == (uint)chosen)
                            left[kept++] = i;
                    }
                }
                else
                {
                    foreach (int i in left.AsSpan(0, n))
                    {
                        if ((int)(OrderKey(logits[i]) >> shift & 255) == chosen)
                            left[kept++] = i;
                    }
                }
                n = kept;
            }
            // The key is exact: the ids left tie (one logit, one weight). Keep as many, in id order, as reach the target.
            ulong each = mass[chosen] / (ulong)n;
            long need = each == 0 ? n : (long)Math.Min((ulong)n, (target - above + each - 1) / each);
            return new Cut(prefix, need >= n ? int.MaxValue : left[need - 1]);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(left);
        }
    }
}
