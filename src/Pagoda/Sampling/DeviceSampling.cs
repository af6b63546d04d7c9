using Pagoda.Backends;
using Pagoda.Requests;

namespace Pagoda.Sampling;

/// <summary>
/// One logits row of a step: a request's sampling row, or, with <see cref="PromptToken"/>, a prompt position whose
/// next prompt token is described for prompt logprobs.
/// </summary>
public readonly record struct LogitsRow(Request Request, int PromptToken = -1)
{
    /// <summary>Whether the row describes a prompt token rather than sampling.</summary>
    public bool IsPrompt => PromptToken >= 0;

    /// <summary>A verification row's drafts before it: the row is processed as if they had been sampled.</summary>
    public ReadOnlyMemory<int> Drafts { get; init; }
}

/// <summary>
/// Sampling with a device that processes and reduces logits (<see cref="IDeviceSampler"/>): <see cref="Plan"/> turns
/// the step's sampling requests into the device's inputs (the same edits, penalties and masks the host would apply,
/// as sparse lists), and <see cref="Pick"/> finishes each row on the host from what came back — the same draw the
/// host would make from the whole row (<see cref="Sampler.Sample"/>), with the request's own uniform.
/// </summary>
public static class DeviceSampling
{
    /// <summary>
    /// The device inputs for <paramref name="rows"/> (the step's logits rows in batch order), or null when some row
    /// needs the whole row on the host: a top-k above <paramref name="maxCandidates"/> (below the vocabulary), or more
    /// than <see cref="DeviceSamplingInputs.TopLogprobs"/> logprobs or prompt logprobs. A top-k within the candidates
    /// draws among them on the host; without a top-k the device draws over the row, after its min-p and top-p cut.
    /// Rows under a grammar get its allowed-token bitmask when the device asks for it; a request whose grammar throws
    /// then is put in <paramref name="failed"/> (its row is left unconstrained and its token dropped).
    /// </summary>
    public static DeviceSamplingInputs? Plan(IReadOnlyList<LogitsRow> rows, int maxCandidates, int vocab, Dictionary<string, Exception> failed)
    {
        int[] penalties = [];
        return Plan(rows, maxCandidates, vocab, failed, ref penalties);
    }

    /// <summary>
    /// <see cref="Plan(IReadOnlyList{LogitsRow}, int, int, Dictionary{string, Exception})"/> with the penalty pairs
    /// written into <paramref name="penaltyBuffer"/>, grown when too small. The caller keeps it from step to step: the
    /// device copies the inputs when the step is launched, and a fresh array a step was a large-object allocation
    /// (300 KB at 64 rows of ~600 tokens) whose collections cost more than the rest of the plan (this CPU: a mean of
    /// 0.86 ms against 0.09 ms with the buffer kept).
    /// </summary>
    public static DeviceSamplingInputs? Plan(IReadOnlyList<LogitsRow> rows, int maxCandidates, int vocab, Dictionary<string, Exception> failed,
        ref int[] penaltyBuffer)
    {
        bool processed = false, logprobs = false, masked = false;
        int k = 1;   // candidates: as many as the widest top-k drawn from them (the reduction's cost grows with k)
        var edits = new IReadOnlyDictionary<int, float>[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            var (req, p) = (rows[r].Request, rows[r].Request.Params);
            if (rows[r].IsPrompt)
            {
                if (p.PromptLogprobs > DeviceSamplingInputs.TopLogprobs)
                    return null;
                (processed, logprobs, edits[r]) = (true, true, new Dictionary<int, float>());
                continue;
            }
            if (!p.IsGreedy && !FromCandidates(p, maxCandidates, vocab) && !DrawsOnDevice(p, vocab))
                return null;
            if (p.Logprobs > DeviceSamplingInputs.TopLogprobs)
                return null;
            using (req.WithDrafts(rows[r].Drafts.Span))
                edits[r] = LogitsProcessors.SparseEdits(req);
            bool rowMasked = p.AllowedTokenIds != null || req.GrammarActive;
            masked |= rowMasked;
            processed |= rowMasked || edits[r].Count > 0 || LogitsProcessors.HasPenalties(p) || DrawsOnDevice(p, vocab);
            logprobs |= p.Logprobs != null;
            if (!p.IsGreedy && FromCandidates(p, maxCandidates, vocab))
                k = Math.Max(k, p.TopK);
        }
        if (!processed && !logprobs)
            return DeviceSamplingInputs.TopK(rows.Count, k);
        return Build(rows, edits, k, vocab, ref penaltyBuffer) with
        {
            Logprobs = logprobs, Masks = masked ? bits => FillMasks(bits, rows, (vocab + 31) / 32, failed) : null,
        };
    }

    // A top-k the candidates hold: the filters then cut inside them.
    private static bool FromCandidates(SamplingParams p, int k, int vocab) => p.TopK > 0 && p.TopK <= k && p.TopK < vocab;

    // No top-k: one draw over the whole row, by index, after min-p and top-p cut it (as Sampler.Sample draws it).
    private static bool DrawsOnDevice(SamplingParams p, int vocab) => !p.IsGreedy && (p.TopK <= 0 || p.TopK >= vocab);

    private static bool CutsOnDevice(SamplingParams p, int vocab) => DrawsOnDevice(p, vocab) && (p.TopP < 1.0 || p.MinP > 0);

    private static DeviceSamplingInputs Build(IReadOnlyList<LogitsRow> rows, IReadOnlyDictionary<int, float>[] edits, int k, int vocab,
        ref int[] penaltyBuffer)
    {
        int n = rows.Count, words = (vocab + 31) / 32;
        var prm = new int[n * DeviceSamplingInputs.ParamWidth];
        var editOffsets = new int[n + 1];
        var penaltyOffsets = new int[n + 1];
        for (int r = 0; r < n; r++)
        {
            var (req, p) = (rows[r].Request, rows[r].Request.Params);
            editOffsets[r + 1] = editOffsets[r] + edits[r].Count;
            using var drafts = req.WithDrafts(rows[r].Drafts.Span);
            penaltyOffsets[r + 1] = penaltyOffsets[r] + (!rows[r].IsPrompt && LogitsProcessors.HasPenalties(p) ? req.Counts.Count : 0);
        }
        var editPairs = new int[2 * editOffsets[n]];
        if (penaltyBuffer.Length < 2 * penaltyOffsets[n])
            penaltyBuffer = GC.AllocateUninitializedArray<int>(Math.Max(2 * penaltyOffsets[n], 2 * penaltyBuffer.Length));
        var penaltyPairs = penaltyBuffer.AsMemory(0, 2 * penaltyOffsets[n]);
        bool draws = false, cuts = false;   // the kind: whether the device runs the draw, and the top-p cut
        for (int r = 0; r < n; r++)
        {
            var (req, p) = (rows[r].Request, rows[r].Request.Params);
            var row = prm.AsSpan(r * DeviceSamplingInputs.ParamWidth, DeviceSamplingInputs.ParamWidth);
            if (rows[r].IsPrompt)
            {
                (row[0], row[3]) = (BitConverter.SingleToInt32Bits(1f), BitConverter.SingleToInt32Bits(1f));
                (row[6], row[7]) = (DeviceSamplingInputs.GivenFlag, rows[r].PromptToken);
                continue;
            }
            using var drafts = req.WithDrafts(rows[r].Drafts.Span);
            long u = BitConverter.DoubleToInt64Bits(Philox.Uniform(req.Seed, req.NumOutputTokens));
            row[0] = BitConverter.SingleToInt32Bits(p.IsGreedy ? 1f : (float)(1 / p.Temperature));
            (row[1], row[2]) = ((int)u, (int)(u >> 32));
            row[3] = BitConverter.SingleToInt32Bits((float)p.RepetitionPenalty);
            row[4] = BitConverter.SingleToInt32Bits((float)p.FrequencyPenalty);
            row[5] = BitConverter.SingleToInt32Bits((float)p.PresencePenalty);
            row[6] = (DrawsOnDevice(p, vocab) ? DeviceSamplingInputs.DrawFlag : 0) | (CutsOnDevice(p, vocab) ? DeviceSamplingInputs.NucleusFlag : 0);
            row[8] = BitConverter.SingleToInt32Bits((float)p.TopP);
            row[9] = BitConverter.SingleToInt32Bits((float)p.MinP);
            draws |= DrawsOnDevice(p, vocab);
            cuts |= CutsOnDevice(p, vocab) && (float)p.TopP < 1f;   // the top-p the device compares
            int e = 2 * editOffsets[r];
            foreach (var (id, add) in edits[r])
                (editPairs[e++], editPairs[e++]) = (id, BitConverter.SingleToInt32Bits(add));
            if (penaltyOffsets[r + 1] > penaltyOffsets[r])
                req.Counts.Pairs.CopyTo(penaltyPairs.Span[(2 * penaltyOffsets[r])..]);
        }
        return new DeviceSamplingInputs(n, k)
        {
            Processed = true, Params = prm, EditOffsets = editOffsets, Edits = editPairs, PenaltyOffsets = penaltyOffsets,
            Penalties = penaltyPairs, MaskWords = words, Draws = draws, Cuts = cuts,
        };
    }

    // Each row's bits: its grammar's (none past the grammar's vocabulary), narrowed to its allowed ids where it lists
    // them; all ones for a free row. Runs while the device computes, on the engine's thread.
    private static void FillMasks(Span<int> bits, IReadOnlyList<LogitsRow> rows, int words, Dictionary<string, Exception> failed)
    {
        for (int r = 0; r < rows.Count; r++)
        {
            var req = rows[r].Request;
            var row = bits.Slice(r * words, words);
            row.Fill(-1);
            if (rows[r].IsPrompt)
                continue;
            if (req.GrammarActive)
            {
                try
                {
                    row.Clear();
                    req.Grammar!.FillNextTokenBitmask(row);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    failed[req.RequestId] = e;
                    row.Fill(-1);
                }
            }
            if (req.Params.AllowedTokenIds is { } allowed)
            {
                var keep = new int[words];
                foreach (int id in allowed)
                {
                    if ((uint)id < (uint)words * 32)
                        keep[id >> 5] |= 1 << (id & 31);
                }
                for (int w = 0; w < words; w++)
                    row[w] &= keep[w];
            }
        }
    }

    /// <summary>
    /// The token for row <paramref name="row"/> of a reduced output, and its logprobs when the request asked:
    /// greedy takes the best candidate, a top-k within the candidates draws among them, and anything else takes the
    /// device's draw over the whole row.
    /// </summary>
    public static int Pick(ReadOnlySpan<float> output, DeviceSamplingInputs s, int row, Request req, out TokenLogprob? logprob)
    {
        int k = s.Candidates;
        var o = output.Slice(row * s.RowWidth, s.RowWidth);
        var p = req.Params;
        int token;
        if (p.IsGreedy)
            token = (int)o[k];
        else if (s.Processed && (s.Params[row * DeviceSamplingInputs.ParamWidth + 6] & DeviceSamplingInputs.DrawFlag) != 0)
            token = (int)o[2 * k];
        else
        {
            Span<int> ids = stackalloc int[k];   // k ≤ the device's candidates (64)
            for (int i = 0; i < k; i++)
                ids[i] = (int)o[k + i];
            token = Sampler.SampleCandidates(o[..k], ids, p, Philox.Uniform(req.Seed, req.NumOutputTokens));
        }
        if (token < 0)
            throw new InvalidOperationException($"no token of request {req.RequestId} may be sampled (every logit is -inf)");
        logprob = p.Logprobs is int n ? Describe(o, k, token, n) : null;
        return token;
    }

    /// <summary>The logprob, rank and top <paramref name="n"/> of the prompt token row <paramref name="row"/> was given.</summary>
    public static TokenLogprob DescribePrompt(ReadOnlySpan<float> output, DeviceSamplingInputs s, int row, int n)
    {
        var o = output.Slice(row * s.RowWidth, s.RowWidth);
        return Describe(o, s.Candidates, (int)o[2 * s.Candidates], n);
    }

    private static TokenLogprob Describe(ReadOnlySpan<float> o, int k, int token, int n)
    {
        const int N = DeviceSamplingInputs.TopLogprobs;
        double lse = o[2 * k + 2];
        double raw = double.NaN, rank = 0;
        for (int i = 0; i < k && double.IsNaN(raw); i++)
        {
            if ((int)o[k + i] == token)
                (raw, rank) = (o[2 * k + 3 + i], o[3 * k + 3 + i]);
        }
        if (double.IsNaN(raw) && (int)o[2 * k] == token)
            (raw, rank) = (o[4 * k + 3], o[4 * k + 4]);
        if (double.IsNaN(raw))
            throw new InvalidOperationException($"token {token} is neither a candidate nor the row's draw");
        var top = new List<TopLogprob>(n);
        for (int i = 0; i < Math.Min(n, N) && o[4 * k + 5 + N + i] >= 0; i++)
            top.Add(new TopLogprob((int)o[4 * k + 5 + N + i], o[4 * k + 5 + i] - lse));
        return new TokenLogprob(token, raw - lse, (int)rank, top);
    }
}
