using Pagoda.Backends;
using Pagoda.Cuda;
using Pagoda.Sampling;

namespace Pagoda.CudaCheck;

/// <summary>
/// The device's sampling reduction against <see cref="DeviceSamplingReference"/> on the same logits (as the dtype
/// stores them): candidates, processed values, masks, edits and penalties exactly; the mass, the whole-row draws,
/// the logsumexp, ranks and raw top logprobs; then whole-row draws against exact probabilities (chi-square).
/// </summary>
public static class SamplingParity
{
    private const int Vocab = 151_936;

    /// <summary>Runs the checks; returns the failures (each line printed).</summary>
    public static List<string> Run(CudaBackend gpu, Random rng, DType dtype, TextWriter log)
    {
        var failures = new List<string>();
        void Report(bool ok, string what, string detail)
        {
            string line = $"  {(ok ? "PASS" : "FAIL")} {dtype,-4} {what,-34} {detail}";
            log.WriteLine(line);
            if (!ok)
                failures.Add(line);
        }
        int rows = 8;
        var data = new float[rows * Vocab];
        for (int i = 0; i < data.Length; i++)
            data[i] = MathF.Round((float)(rng.NextDouble() * 40 - 20), 1); // coarse values: many ties
        data[3 * Vocab + 7] = 25f; data[3 * Vocab + 9] = 25f;           // a tie for the best
        using var t = gpu.Upload(data, rows, Vocab);
        var stored = new float[data.Length];
        gpu.CopyToHost(t, stored);                                        // the values as the dtype holds them
        foreach (int k in new[] { 1, 7, 64 })
        {
            var s = DeviceSamplingInputs.TopK(rows, k);
            var (ok, detail) = Compare(gpu, t, stored, s);
            Report(ok, $"top-k on device (k={k}, ties)", detail);
        }
        foreach (bool logprobs in new[] { false, true })
        {
            var s = Processed(rng, rows, logprobs);
            var (ok, detail) = Compare(gpu, t, stored, s);
            Report(ok, $"sampling, processed{(logprobs ? " + logprobs" : "")}", detail);
        }
        var (chiOk, chiDetail) = Draws(gpu, rng, (1f, 0f));
        Report(chiOk, "whole-row draws vs probabilities", chiDetail);
        (chiOk, chiDetail) = Draws(gpu, rng, (0.8f, 0f));
        Report(chiOk, "top-p 0.8 draws vs probabilities", chiDetail);
        (chiOk, chiDetail) = Draws(gpu, rng, (1f, 0f), (0.8f, 0f), (1f, 0.05f), (0.95f, 0.01f));
        Report(chiOk, "mixed modes in one batch", chiDetail);
        return failures;
    }

    // Every feature on some row: temperatures, draws (over the whole row, or after top-p and / or min-p), repetition /
    // frequency / presence penalties, bias and bans, masks.
    private static DeviceSamplingInputs Processed(Random rng, int rows, bool logprobs)
    {
        int words = (Vocab + 31) / 32;
        var prm = new int[rows * DeviceSamplingInputs.ParamWidth];
        var editOffsets = new int[rows + 1];
        var penaltyOffsets = new int[rows + 1];
        var edits = new List<int>();
        var penalties = new List<int>();
        var masks = new int[rows * words];
        for (int r = 0; r < rows; r++)
        {
            var p = prm.AsSpan(r * DeviceSamplingInputs.ParamWidth);
            long u = BitConverter.DoubleToInt64Bits(Philox.Uniform(r, 3));
            p[0] = BitConverter.SingleToInt32Bits(1f / (0.3f + r * 0.2f));
            (p[1], p[2]) = ((int)u, (int)(u >> 32));
            p[3] = BitConverter.SingleToInt32Bits(r % 3 == 0 ? 1f : 1.1f + r * 0.05f);
            p[4] = BitConverter.SingleToInt32Bits(r % 2 == 0 ? 0f : 0.4f);
            p[5] = BitConverter.SingleToInt32Bits(r % 4 == 1 ? -0.3f : 0.2f);
            p[6] = r % 2 == 1 ? DeviceSamplingInputs.DrawFlag : 0;
            (float topP, float minP) = r switch { 1 => (0.9f, 0f), 3 => (0.5f, 0.05f), 5 => (1f, 0.1f), _ => (1f, 0f) };
            if (topP < 1f || minP > 0f)
                p[6] |= DeviceSamplingInputs.NucleusFlag;
            (p[8], p[9]) = (BitConverter.SingleToInt32Bits(topP), BitConverter.SingleToInt32Bits(minP));
            foreach (int id in Distinct(rng, r % 3 == 2 ? 0 : 40))
                edits.AddRange([id, BitConverter.SingleToInt32Bits(rng.Next(4) == 0 ? float.NegativeInfinity : (float)(rng.NextDouble() * 10 - 5))]);
            editOffsets[r + 1] = edits.Count / 2;
            foreach (int id in Distinct(rng, r == 5 ? 0 : 700))
                penalties.AddRange([id, rng.Next(3) == 0 ? 0 : rng.Next(1, 9)]);
            penaltyOffsets[r + 1] = penalties.Count / 2;
            for (int w = 0; w < words; w++)
                masks[r * words + w] = r % 4 == 2 ? rng.Next() | rng.Next() << 16 : -1;
        }
        return new DeviceSamplingInputs(rows, 64)
        {
            Processed = true, Logprobs = logprobs, Draws = true, Cuts = true, Params = prm, EditOffsets = editOffsets, Edits = [.. edits],
            PenaltyOffsets = penaltyOffsets, Penalties = penalties.ToArray(), Masks = bits => masks.CopyTo(bits), MaskWords = words,
        };
    }

    private static IEnumerable<int> Distinct(Random rng, int n) => Enumerable.Range(0, n * 2).Select(_ => rng.Next(Vocab)).Distinct().Take(n);

    private static (bool, string) Compare(CudaBackend gpu, Tensor logits, float[] stored, DeviceSamplingInputs s)
    {
        int w = s.RowWidth, k = s.Candidates;
        var got = new float[s.Rows * w];
        var want = new float[s.Rows * w];
        gpu.ReduceToHost(logits, s, got);
        DeviceSamplingReference.Reduce(stored, Vocab, s, want);
        int exact = 0, differ = 0;
        double worst = 0;
        string first = "";   // where the first difference is: a failure on a GPU session must say enough to fix it
        for (int r = 0; r < s.Rows; r++)
        {
            for (int i = 0; i < w; i++)
            {
                float a = got[r * w + i], b = want[r * w + i];
                bool approx = s.Processed && (i == 2 * k + 1 || i == 2 * k + 2);   // the mass and the logsumexp: sums in another order
                if (approx)
                    worst = Math.Max(worst, Math.Abs(a - b) / Math.Max(1e-30, Math.Abs(b)));
                else if (a.Equals(b))
                    exact++;
                else if (differ++ == 0)
                    first = $"; first at row {r} entry {i} of {w} (k {k}): got {a:R}, want {b:R}";
            }
        }
        return (differ == 0 && worst < 1e-5, $"{exact} exact, {differ} differ, mass/lse rel. err {worst:E1}{first}");
    }

    // 64 rows × 32 launches a mode of one distribution with a few likely tokens; row r draws in mode r mod the modes' count:
    // the whole row, or cut by top-p and / or min-p (the kept set as Nucleus finds it on the host). Chi-square of each
    // mode's draws against its kept distribution.
    private static (bool, string) Draws(CudaBackend gpu, Random rng, params (float TopP, float MinP)[] modes)
    {
        int rows = 64, launches = 32 * modes.Length;   // 2,048 draws a mode
        var row = new float[Vocab];
        for (int i = 0; i < Vocab; i++)
            row[i] = -30f + (float)rng.NextDouble();
        float[] likely = [4f, 3.5f, 3f, 2f, 1f, 0.5f, 0f, -1f];
        int[] ids = [5, 77, 1000, 50_000, 151_935, 123, 9, 88_888];
        for (int j = 0; j < ids.Length; j++)
            row[ids[j]] = likely[j];
        var data = new float[rows * Vocab];
        for (int r = 0; r < rows; r++)
            row.CopyTo(data, r * Vocab);
        using var t = gpu.Upload(data, rows, Vocab);
        var all = new float[data.Length];
        gpu.CopyToHost(t, all);
        var stored = all[..Vocab];
        float max = stored.Max();
        var weights = stored.Select(v => MathF.Exp(v - max)).ToArray();
        var counts = modes.Select(_ => new Dictionary<int, int>()).ToArray();
        for (int l = 0; l < launches; l++)
        {
            const int W = DeviceSamplingInputs.ParamWidth;
            var prm = new int[rows * W];
            for (int r = 0; r < rows; r++)
            {
                var (topP, minP) = modes[r % modes.Length];
                long u = BitConverter.DoubleToInt64Bits(rng.NextDouble());
                prm[r * W] = BitConverter.SingleToInt32Bits(1f);
                (prm[r * W + 1], prm[r * W + 2]) = ((int)u, (int)(u >> 32));
                prm[r * W + 3] = BitConverter.SingleToInt32Bits(1f);
                prm[r * W + 6] = DeviceSamplingInputs.DrawFlag | (topP < 1f || minP > 0f ? DeviceSamplingInputs.NucleusFlag : 0);
                (prm[r * W + 8], prm[r * W + 9]) = (BitConverter.SingleToInt32Bits(topP), BitConverter.SingleToInt32Bits(minP));
            }
            var s = new DeviceSamplingInputs(rows, 1)
            {
                Processed = true, Draws = true, Cuts = modes.Any(m => m.TopP < 1f), Params = prm, EditOffsets = new int[rows + 1], PenaltyOffsets = new int[rows + 1],
            };
            var got = new float[rows * s.RowWidth];
            gpu.ReduceToHost(t, s, got);
            for (int r = 0; r < rows; r++)
            {
                int id = (int)got[r * s.RowWidth + 2];
                var c = counts[r % modes.Length];
                c[id] = c.GetValueOrDefault(id) + 1;
            }
        }
        bool ok = true;
        var details = new List<string>();
        for (int m = 0; m < modes.Length; m++)
        {
            var (topP, minP) = modes[m];
            var cut = Nucleus.Find(stored, weights, topP, minP);
            bool Kept(int i) => weights[i] >= minP && cut.Keeps(Nucleus.OrderKey(stored[i]), i);
            double mass = Enumerable.Range(0, Vocab).Where(Kept).Sum(i => Math.Exp(stored[i] - max));
            double P(int id) => Kept(id) ? Math.Exp(stored[id] - max) / mass : 0;
            int n = counts[m].Values.Sum(), dropped = counts[m].Where(c => !Kept(c.Key)).Sum(c => c.Value);
            double chi = 0, other = n;
            var likelyKept = ids.Where(Kept).ToArray();
            foreach (int id in likelyKept)
            {
                double expect = n * P(id);
                chi += Math.Pow(counts[m].GetValueOrDefault(id) - expect, 2) / expect;
                other -= counts[m].GetValueOrDefault(id);
            }
            double otherExpect = n - likelyKept.Sum(id => n * P(id));
            if (otherExpect > 1e-9)
                chi += Math.Pow(other - otherExpect, 2) / otherExpect;
            else
                dropped += (int)other;
            // p = 0.001 limits for the degrees of freedom (the kept likely tokens, plus the rest when it has mass).
            int dof = likelyKept.Length - (otherExpect > 1e-9 ? 0 : 1);
            double limit = new[] { 10.8, 13.8, 16.3, 18.5, 20.5, 22.5, 24.3, 26.1 }[Math.Clamp(dof, 1, 8) - 1];
            ok &= chi < limit && dropped == 0;
            details.Add($"top-p {topP} min-p {minP}: {n} draws over {likelyKept.Length} likely tokens kept, chi-square {chi:F1} ({dof} dof, limit {limit}), {dropped} outside the cut");
        }
        return (ok, string.Join("; ", details));
    }
}
