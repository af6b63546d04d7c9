using Pagoda.Backends;
using Pagoda.Models;
using Pagoda.Requests;
using Pagoda.Sampling;
using Pagoda.Scheduling;

namespace Pagoda.Execution;

/// <summary>Logprobs of prompt tokens FirstPosition, FirstPosition + 1, ... computed in one step.</summary>
public sealed record PromptLogprobsChunk(int FirstPosition, List<TokenLogprob> Entries);

/// <summary>
/// What one step produced per request: sampled tokens, their logprobs, prompt logprobs of the chunk, and the
/// requests that failed on their own (they were left out of the forward or got no token).
/// </summary>
/// <remarks>A request verifying drafts samples up to one token per draft and one after them: the accepted drafts and the token
/// that differs or follows (vLLM's sampled_token_ids); the others one.</remarks>
public sealed record ModelRunnerOutput(
    IReadOnlyDictionary<string, int[]> SampledTokens,
    IReadOnlyDictionary<string, TokenLogprob[]> Logprobs,
    IReadOnlyDictionary<string, PromptLogprobsChunk> PromptLogprobs)
{
    /// <summary>Requests whose own processing threw, with the exception.</summary>
    public IReadOnlyDictionary<string, Exception> Failed { get; init; } = new Dictionary<string, Exception>();

    /// <summary>
    /// Requests left out of the forward, not failed: they adopted prefix-cache blocks that a failed request
    /// was to write in this step, so they must be recomputed from scratch.
    /// </summary>
    public IReadOnlyList<Request> Recompute { get; init; } = [];
}

/// <summary>
/// A step whose forward was started by <see cref="ModelRunner.Launch"/>: the requests in the forward, those that
/// failed or must be recomputed before it ran, and the forward (null when nothing runs).
/// </summary>
public sealed record LaunchedStep(List<ScheduledRequest> Scheduled, Dictionary<string, Exception> Failed, IReadOnlyList<Request> Recompute,
    IForwardHandle? Forward, DeviceSamplingPlan? Sampling)
{
    /// <summary>The allowed-token bitmask of each sampling request under a grammar, made while the forward ran.</summary>
    public Dictionary<string, int[]> Masks { get; init; } = [];

    /// <summary>The step's batch (null when nothing runs): a draft model mirrors it.</summary>
    public ForwardBatch? Batch { get; init; }

    /// <summary>Whether the forward may still be running on the device (work done before Finish overlaps with it).</summary>
    public bool IsAsynchronous => Forward?.IsAsynchronous ?? false;
}

/// <summary>
/// Turns a <see cref="SchedulerOutput"/> into one <see cref="ForwardBatch"/>, runs the model over the KV
/// pool, and samples each request that reached the end of its known tokens. When the backend processes and
/// reduces logits on the device (<paramref name="maxCandidates"/> above 0; <see cref="DeviceSampling"/>), only
/// each row's candidates and facts come back, unless a row needs its whole row (more than 20 logprobs, a top-k
/// beyond the candidates).
/// </summary>
public sealed class ModelRunner(IModel model, PagedKvCache cache, int maxCandidates = 0, FaultHook? faults = null)
{
    // The penalty pairs of the device's inputs, reused from step to step (DeviceSampling.Plan).
    private int[] _penaltyBuffer = [];

    /// <summary>Time spent building batches, in forwards and sampling.</summary>
    public StepTimings Timings { get; } = new();

    /// <summary>The KV pool.</summary>
    public PagedKvCache Cache { get; } = cache;

    /// <summary>Builds the flattened batch from the scheduled requests and their block tables.</summary>
    public ForwardBatch BuildBatch(IReadOnlyList<ScheduledRequest> scheduled)
    {
        int total = 0;
        foreach (var s in scheduled)
            total += s.NumTokens;
        int bs = Cache.BlockSize;
        var ids = new int[total];
        var positions = new int[total];
        var slots = new int[total];
        var blockTables = new int[scheduled.Count][];
        var queryStart = new int[scheduled.Count + 1];
        var seqLens = new int[scheduled.Count];
        var logitRows = new List<int>(scheduled.Count);
        int t = 0;
        for (int s = 0; s < scheduled.Count; s++)
        {
            var (req, numTokens, spec) = (scheduled[s].Request, scheduled[s].NumTokens, scheduled[s].SpecTokenIds);
            int computed = req.NumComputedTokens, known = req.NumTokens;
            // A verified draft's row, like the row of the last known token, is sampled.
            int firstSampled = scheduled[s].SamplesToken ? numTokens - 1 - spec.Length : numTokens;
            queryStart[s] = t;
            seqLens[s] = computed + numTokens;
            // The scheduler's table is this step's own array: adopted as is rather than copied again.
            blockTables[s] = scheduled[s].BlockIds;
            if (blockTables[s].Length * bs < seqLens[s])
                throw new InvalidOperationException($"request {req.RequestId} has {blockTables[s].Length} blocks for {seqLens[s]} tokens");
            bool allRows = WantsPromptLogprobs(scheduled[s]);
            for (int i = 0; i < numTokens; i++, t++)
            {
                int pos = computed + i;
                ids[t] = pos < known ? req.AllTokenIds[pos] : spec[pos - known];
                positions[t] = pos;
                slots[t] = blockTables[s][pos / bs] * bs + pos % bs;
                if (allRows || i >= firstSampled)
                    logitRows.Add(t);
            }
        }
        queryStart[scheduled.Count] = t;
        return new ForwardBatch(ids, positions, slots, blockTables, queryStart, seqLens, logitRows.ToArray());
    }

    /// <summary>Runs one step and samples.</summary>
    public ModelRunnerOutput Execute(SchedulerOutput output) => Finish(Launch(output));

    /// <summary>
    /// Builds the step's batch and starts its forward (see <see cref="IModel.ForwardAsync"/>); <see cref="Finish"/>
    /// waits for it and samples. A throw here is the forward's own and fails the whole batch.
    /// </summary>
    public LaunchedStep Launch(SchedulerOutput output)
    {
        var failed = new Dictionary<string, Exception>();
        if (output.IsEmpty)
            return new LaunchedStep([], failed, [], null, null);

        // A request whose own preparation fails is left out of the forward; the rest of the batch runs.
        var scheduled = output.Scheduled.Where(s => Guard(FaultSite.Step, s.Request.RequestId, failed)).ToList();
        var recompute = failed.Count == 0 ? [] : output.ReadersOfUnwrittenBlocks(failed.Keys.ToHashSet());
        if (recompute.Count > 0)
            scheduled.RemoveAll(s => recompute.Contains(s.Request));
        if (scheduled.Count == 0)
            return new LaunchedStep(scheduled, failed, recompute, null, null);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var batch = BuildBatch(scheduled);
        // Unguarded on purpose: this stands for the model itself throwing, which fails the whole batch.
        foreach (var s in scheduled)
            faults?.Invoke(FaultSite.Forward, s.Request.RequestId);
        // The device's plan (penalty lists, grammar masks) is made while the forward runs: the device asks for it once
        // the forward is launched (so "launch" includes it). The host path makes its grammar masks here, after the launch.
        var plan = maxCandidates > 0
            ? new DeviceSamplingPlan(() => DeviceSampling.Plan(LogitsRows(scheduled), maxCandidates, model.Config.VocabSize, failed, ref _penaltyBuffer))
            : null;
        t0 = Timings.Lap(StepPhase.Build, t0);
        var forward = model.ForwardAsync(plan != null ? batch with { Sampling = plan } : batch, Cache);
        Timings.Lap(StepPhase.Launch, t0);
        return new LaunchedStep(scheduled, failed, recompute, forward, plan)
        {
            Masks = plan?.Inputs == null ? GrammarMasks(scheduled, failed) : [], Batch = batch,
        };
    }

    /// <summary>Waits for a launched step's forward and samples each request that reached the end of its tokens.</summary>
    public ModelRunnerOutput Finish(LaunchedStep step)
    {
        var sampled = new Dictionary<string, int[]>();
        var logprobs = new Dictionary<string, TokenLogprob[]>();
        var promptLogprobs = new Dictionary<string, PromptLogprobsChunk>();
        var result = new ModelRunnerOutput(sampled, logprobs, promptLogprobs) { Failed = step.Failed, Recompute = step.Recompute };
        if (step.Forward is null)
            return result;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        float[] output = step.Forward.Wait();
        t0 = Timings.Lap(StepPhase.Forward, t0);
        if (step.Sampling?.Inputs is { } plan)
            SampleFromDevice(step.Scheduled, output, plan, sampled, logprobs, promptLogprobs, step.Failed);
        else
            SampleFromLogits(step.Scheduled, output, step.Masks, sampled, logprobs, promptLogprobs, step.Failed);
        Timings.Lap(StepPhase.Sample, t0);
        return result;
    }

    private void SampleFromLogits(List<ScheduledRequest> scheduled, float[] logits, Dictionary<string, int[]> masks, Dictionary<string, int[]> sampled,
        Dictionary<string, TokenLogprob[]> logprobs, Dictionary<string, PromptLogprobsChunk> promptLogprobs, Dictionary<string, Exception> failed)
    {
        int vocab = model.Config.VocabSize;
        int row = 0;
        foreach (var s in scheduled)
        {
            var req = s.Request;
            if (WantsPromptLogprobs(s))
            {
                // Row i (position computed + i) predicts the prompt token after it.
                var list = new List<TokenLogprob>();
                promptLogprobs[req.RequestId] = new PromptLogprobsChunk(req.NumComputedTokens + 1, list);
                var lp = new double[vocab];
                for (int i = 0; i < s.NumTokens; i++, row++)
                {
                    int next = req.NumComputedTokens + i + 1;
                    if (next >= req.PromptTokenIds.Length)
                        continue;
                    LogprobsComputer.LogSoftmax(logits.AsSpan(row * vocab, vocab), lp);
                    list.Add(LogprobsComputer.Describe(lp, req.PromptTokenIds[next], req.Params.PromptLogprobs!.Value));
                }
                if (s.SamplesToken)
                    row--; // the last row is also the sampling row
            }
            if (!s.SamplesToken)
                continue;
            int at = row;
            row += 1 + s.SpecTokenIds.Length;
            try
            {
                faults?.Invoke(FaultSite.Sampler, req.RequestId);
                masks.TryGetValue(req.RequestId, out int[]? mask);
                Verify(s, j => SampleRow(logits.AsSpan((at + j) * vocab, vocab), req, j == 0 ? mask : null), sampled, logprobs);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Sampling reads only this request's row and state: a failure here is this request's alone.
                failed[req.RequestId] = e;
                sampled.Remove(req.RequestId);
                logprobs.Remove(req.RequestId);
            }
        }
    }

    // One row sampled on the host: the raw logprobs (before penalties and temperature) when asked, the grammar's mask
    // before everything else (as vLLM applies it), the request's edits and penalties, its draw for this output position.
    private static (int Token, TokenLogprob? Logprob) SampleRow(Span<float> rowLogits, Request req, int[]? mask)
    {
        double[]? raw = null;
        if (req.Params.Logprobs != null)
        {
            raw = new double[rowLogits.Length];
            LogprobsComputer.LogSoftmax(rowLogits, raw);
        }
        if (mask != null)
            LogitsProcessors.ApplyMask(rowLogits, mask);
        LogitsProcessors.Apply(rowLogits, req);
        int token = Sampler.Sample(rowLogits, req.Params, Philox.Uniform(req.Seed, req.NumOutputTokens));
        return (token, raw == null ? null : LogprobsComputer.Describe(raw, token, req.Params.Logprobs!.Value));
    }

    /// <summary>
    /// A request's tokens of the step: row 0's, and while each sampled token equals the step's next draft, the next row's,
    /// sampled as if the drafts before it had been (see <see cref="Request.WithDrafts"/>). Each row is the draw the request
    /// would make without speculation, with the same uniform, so the output is the same token for token, greedy or
    /// sampled; a draft is accepted exactly when the target's draw equals it, which for a deterministic proposal (a point
    /// mass q) is the speculative sampling papers' acceptance with probability min(1, p/q) = p(draft), and the token
    /// drawn instead follows p without the draft, their residual.
    /// </summary>
    private static void Verify(ScheduledRequest s, Func<int, (int Token, TokenLogprob? Logprob)> sampleRow, Dictionary<string, int[]> sampled,
        Dictionary<string, TokenLogprob[]> logprobs)
    {
        var spec = s.SpecTokenIds;
        var (token, lp) = sampleRow(0);
        if (spec.Length == 0)
        {
            sampled[s.Request.RequestId] = [token];
            if (lp != null)
                logprobs[s.Request.RequestId] = [lp];
            return;
        }
        var tokens = new List<int>(spec.Length + 1) { token };
        var lps = lp != null ? new List<TokenLogprob>(spec.Length + 1) { lp } : null;
        for (int j = 0; j < spec.Length && token == spec[j]; j++)
        {
            using var drafts = s.Request.WithDrafts(spec.AsSpan(0, j + 1));
            (token, lp) = sampleRow(j + 1);
            tokens.Add(token);
            lps?.Add(lp!);
        }
        sampled[s.Request.RequestId] = [.. tokens];
        if (lps != null)
            logprobs[s.Request.RequestId] = [.. lps];
    }

    // The masks of the step's grammar-constrained rows. On an asynchronous forward (the GPU) this runs while the
    // device computes; a request whose grammar throws fails alone.
    private static Dictionary<string, int[]> GrammarMasks(List<ScheduledRequest> scheduled, Dictionary<string, Exception> failed)
    {
        Dictionary<string, int[]>? masks = null;
        foreach (var s in scheduled)
        {
            if (s.Request.Grammar is not { } g || !s.Request.GrammarActive || !s.SamplesToken)
                continue;
            try
            {
                var mask = new int[g.BitmaskWords];
                g.FillNextTokenBitmask(mask);
                (masks ??= [])[s.Request.RequestId] = mask;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed[s.Request.RequestId] = e;
            }
        }
        return masks ?? [];
    }

    private bool Guard(FaultSite site, string requestId, Dictionary<string, Exception> failed)
    {
        try
        {
            faults?.Invoke(site, requestId);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failed[requestId] = e;
            return false;
        }
    }

    // The step's logits rows in BuildBatch's order: every row of a chunk whose prompt logprobs are wanted (each
    // describing the prompt token after it), and each sampling row (one per verified draft after the first).
    private static List<LogitsRow> LogitsRows(IReadOnlyList<ScheduledRequest> scheduled)
    {
        var rows = new List<LogitsRow>(scheduled.Count);
        foreach (var s in scheduled)
        {
            var req = s.Request;
            if (WantsPromptLogprobs(s))
            {
                for (int i = 0; i < s.NumTokens; i++)
                {
                    int next = req.NumComputedTokens + i + 1;
                    if (next < req.PromptTokenIds.Length)
                        rows.Add(new LogitsRow(req, req.PromptTokenIds[next]));
                }
            }
            if (!s.SamplesToken)
                continue;
            rows.Add(new LogitsRow(req));
            for (int j = 1; j <= s.SpecTokenIds.Length; j++)
                rows.Add(new LogitsRow(req) { Drafts = s.SpecTokenIds.AsMemory(0, j) });
        }
        return rows;
    }

    // Rows of a reduced output are LogitsRows' (a row whose grammar failed is still computed, and dropped here).
    private void SampleFromDevice(IReadOnlyList<ScheduledRequest> scheduled, float[] output, DeviceSamplingInputs plan, Dictionary<string, int[]> sampled,
        Dictionary<string, TokenLogprob[]> logprobs, Dictionary<string, PromptLogprobsChunk> promptLogprobs, Dictionary<string, Exception> failed)
    {
        int row = 0;
        foreach (var s in scheduled)
        {
            var req = s.Request;
            if (WantsPromptLogprobs(s))
            {
                var list = new List<TokenLogprob>();
                promptLogprobs[req.RequestId] = new PromptLogprobsChunk(req.NumComputedTokens + 1, list);
                for (int i = 0; i < s.NumTokens; i++)
                {
                    if (req.NumComputedTokens + i + 1 < req.PromptTokenIds.Length)
                        list.Add(DeviceSampling.DescribePrompt(output, plan, row++, req.Params.PromptLogprobs!.Value));
                }
            }
            if (!s.SamplesToken)
                continue;
            int at = row;
            row += 1 + s.SpecTokenIds.Length;
            if (failed.ContainsKey(req.RequestId) || !Guard(FaultSite.Sampler, req.RequestId, failed))
                continue;
            try
            {
                Verify(s, j => (DeviceSampling.Pick(output, plan, at + j, req, out var lp), lp), sampled, logprobs);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed[req.RequestId] = e;
                sampled.Remove(req.RequestId);
                logprobs.Remove(req.RequestId);
            }
        }
    }

    private static bool WantsPromptLogprobs(ScheduledRequest s) =>
        s.Request.Params.PromptLogprobs != null && s.Request.NumComputedTokens < s.Request.PromptTokenIds.Length - 1;
}
