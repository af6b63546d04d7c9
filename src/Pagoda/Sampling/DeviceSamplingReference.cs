using Pagoda.Backends;

namespace Pagoda.Sampling;

/// <summary>
/// <see cref="IDeviceSampler.ReduceToHost"/> on the host, step by step as the kernels do it, with the host's own
/// arithmetic (<see cref="LogitsProcessors.Penalize"/>, <see cref="Sampler"/>'s whole-row draw and its <see cref="Nucleus"/> cut): the executable
/// contract that device kernels are checked against, and that tests use to run the device path without a device.
/// </summary>
public static class DeviceSamplingReference
{
    /// <summary>Reduces <paramref name="logits"/> [inputs.Rows, vocab] into <paramref name="dst"/> [inputs.Rows, RowWidth].</summary>
    public static void Reduce(ReadOnlySpan<float> logits, int vocab, DeviceSamplingInputs s, Span<float> dst)
    {
        int k = s.Candidates, w = s.RowWidth;
        var x = new float[vocab];
        int[]? masks = null;
        if (s.Masks != null)
            s.Masks(masks = new int[s.Rows * s.MaskWords]);
        for (int r = 0; r < s.Rows; r++)
        {
            var raw = logits.Slice(r * vocab, vocab);
            var o = dst.Slice(r * w, w);
            raw.CopyTo(x);
            var prm = s.Processed ? s.Params.AsSpan(r * DeviceSamplingInputs.ParamWidth, DeviceSamplingInputs.ParamWidth) : default;
            if (s.Processed)
                Process(x, s, masks, r, prm);
            var best = Best(x, k);
            for (int i = 0; i < k; i++)
                (o[i], o[k + i]) = i < best.Length ? (x[best[i]], best[i]) : (float.NegativeInfinity, -1);
            if (!s.Processed)
                continue;
            float invT = BitConverter.Int32BitsToSingle(prm[0]);
            double u = BitConverter.Int64BitsToDouble((uint)prm[1] | (long)prm[2] << 32);
            bool nucleus = (prm[6] & DeviceSamplingInputs.NucleusFlag) != 0;
            var (token, mass) = Sampler.DrawRow(x, invT, u, nucleus ? BitConverter.Int32BitsToSingle(prm[8]) : 1f,
                nucleus ? BitConverter.Int32BitsToSingle(prm[9]) : 0f);
            o[2 * k] = (prm[6] & DeviceSamplingInputs.DrawFlag) != 0 ? token : (prm[6] & DeviceSamplingInputs.GivenFlag) != 0 ? prm[7] : -1;
            o[2 * k + 1] = (prm[6] & DeviceSamplingInputs.DrawFlag) != 0 ? (float)mass : 0f;
            if (s.Logprobs)
                Describe(raw, o, k);
        }
    }

    private static void Process(float[] x, DeviceSamplingInputs s, int[]? masks, int r, ReadOnlySpan<int> prm)
    {
        if (masks != null)
        {
            for (int i = 0; i < x.Length; i++)
            {
                if ((masks[r * s.MaskWords + (i >> 5)] & (1 << (i & 31))) == 0)
                    x[i] = float.NegativeInfinity;
            }
        }
        for (int e = s.EditOffsets[r]; e < s.EditOffsets[r + 1]; e++)
        {
            int id = s.Edits[2 * e];
            if ((uint)id < (uint)x.Length)
                x[id] += BitConverter.Int32BitsToSingle(s.Edits[2 * e + 1]);
        }
        var p = new SamplingParams
        {
            RepetitionPenalty = BitConverter.Int32BitsToSingle(prm[3]),
            FrequencyPenalty = BitConverter.Int32BitsToSingle(prm[4]),
            PresencePenalty = BitConverter.Int32BitsToSingle(prm[5]),
        };
        for (int e = s.PenaltyOffsets[r]; e < s.PenaltyOffsets[r + 1]; e++)
        {
            int id = s.Penalties.Span[2 * e];
            if ((uint)id < (uint)x.Length)
                x[id] = LogitsProcessors.Penalize(x[id], p, s.Penalties.Span[2 * e + 1]);
        }
    }

    private static void Describe(ReadOnlySpan<float> raw, Span<float> o, int k)
    {
        const int N = DeviceSamplingInputs.TopLogprobs;
        double max = double.NegativeInfinity, sum = 0;
        foreach (float v in raw)
            max = Math.Max(max, v);
        foreach (float v in raw)
            sum += Math.Exp(v - max);
        o[2 * k + 2] = (float)(max + Math.Log(sum));
        for (int i = 0; i <= k; i++)
        {
            int id = (int)(i < k ? o[k + i] : o[2 * k]);
            float value = id >= 0 ? raw[id] : float.PositiveInfinity;
            int rank = 1;
            foreach (float v in raw)
            {
                if (v > value)
                    rank++;
            }
            (o[i < k ? 2 * k + 3 + i : 4 * k + 3], o[i < k ? 3 * k + 3 + i : 4 * k + 4]) = (value, rank);
        }
        var top = Best(raw, N);
        for (int i = 0; i < N; i++)
            (o[4 * k + 5 + i], o[4 * k + 5 + N + i]) = i < top.Length ? (raw[top[i]], top[i]) : (float.NegativeInfinity, -1);
    }

    // The ids of the k largest values, best first, ties by lower id (the host sampler's own order).
    private static int[] Best(ReadOnlySpan<float> x, int k) => Sampler.SortAll(x)[..Math.Min(k, x.Length)];
}
