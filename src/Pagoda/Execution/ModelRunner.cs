using Pagoda.Backends;
using Pagoda.KvCache;
using Pagoda.Models;
using Pagoda.Sampling;
using Pagoda.Scheduling;

namespace Pagoda.Execution;

/// <summary>Logprobs of prompt tokens FirstPosition, FirstPosition + 1, ... computed in one step.</summary>
public sealed record PromptLogprobsChunk(int FirstPosition, List<TokenLogprob> Entries);

/// <summary>
/// What one step produced per request: sampled tokens, their logprobs, prompt logprobs of the chunk, and the
/// requests that failed on their own (they were left out of the forward or got no token).
/// </summary>
public sealed record ModelRunnerOutput(
    IReadOnlyDictionary<string, int> SampledTokens,
    IReadOnlyDictionary<string, TokenLogprob> Logprobs,
    IReadOnlyDictionary<string, PromptLogprobsChunk> PromptLogprobs)
{
    /// <summary>Requests whose own processing threw, with the exception.</summary>
    public IReadOnlyDictionary<string, Exception> Failed { get; init; } = new Dictionary<string, Exception>();
}

/// <summary>
/// Turns a <see cref="SchedulerOutput"/> into one <see cref="ForwardBatch"/>, runs the model over the KV
/// pool, and samples each request that reached the end of its known tokens.
/// </summary>
public sealed class ModelRunner(IModel model, PagedKvCache cache, Engine.FaultHook? faults = null)
{
    /// <summary>The KV pool.</summary>
    public PagedKvCache Cache { get; } = cache;

    /// <summary>Builds the flattened batch; <paramref name="blockIds"/> gives each request's block table.</summary>
    public ForwardBatch BuildBatch(IReadOnlyList<ScheduledRequest> scheduled, Func<string, IReadOnlyList<int>> blockIds)
    {
        int total = scheduled.Sum(s => s.NumTokens);
        int bs = Cache.BlockSize;
        var ids = new int[total];
        var positions = new int[total];
        var slots = new int[total];
        var blockTables = new int[scheduled.Count][];
        var queryStart = new int[scheduled.Count + 1];
        var seqLens = new int[scheduled.Count];
        var logitRows = new List<int>();
        int t = 0;
        for (int s = 0; s < scheduled.Count; s++)
        {
            var (req, numTokens) = (scheduled[s].Request, scheduled[s].NumTokens);
            int computed = req.NumComputedTokens;
            queryStart[s] = t;
            seqLens[s] = computed + numTokens;
            blockTables[s] = blockIds(req.RequestId).ToArray();
            if (blockTables[s].Length * bs < seqLens[s])
                throw new InvalidOperationException($"request {req.RequestId} has {blockTables[s].Length} blocks for {seqLens[s]} tokens");
            bool allRows = WantsPromptLogprobs(scheduled[s]);
            for (int i = 0; i < numTokens; i++, t++)
            {
                int pos = computed + i;
                ids[t] = req.AllTokenIds[pos];
                positions[t] = pos;
                slots[t] = blockTables[s][pos / bs] * bs + pos % bs;
                if (allRows || (i == numTokens - 1 && scheduled[s].SamplesToken))
                    logitRows.Add(t);
            }
        }
        queryStart[scheduled.Count] = t;
        return new ForwardBatch(ids, positions, slots, blockTables, queryStart, seqLens, logitRows.ToArray());
    }

    /// <summary>Runs one step and samples.</summary>
    public ModelRunnerOutput Execute(SchedulerOutput output, KvCacheManager kv)
    {
        var sampled = new Dictionary<string, int>();
        var logprobs = new Dictionary<string, TokenLogprob>();
        var promptLogprobs = new Dictionary<string, PromptLogprobsChunk>();
        var failed = new Dictionary<string, Exception>();
        if (output.IsEmpty)
            return new ModelRunnerOutput(sampled, logprobs, promptLogprobs);

        // A request whose own preparation fails is left out of the forward; the rest of the batch runs.
        var scheduled = output.Scheduled.Where(s => Guard(Engine.FaultSite.Step, s.Request.RequestId, failed)).ToList();
        if (scheduled.Count == 0)
            return new ModelRunnerOutput(sampled, logprobs, promptLogprobs) { Failed = failed };
        var batch = BuildBatch(scheduled, kv.GetBlockIds);
        float[] logits = model.Forward(batch, Cache);
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
            int at = row++;
            try
            {
                faults?.Invoke(Engine.FaultSite.Sampler, req.RequestId);
                var rowLogits = logits.AsSpan(at * vocab, vocab);
                double[]? raw = null;
                if (req.Params.Logprobs != null)
                {
                    // Logprobs describe the raw model distribution, before penalties and temperature.
                    raw = new double[vocab];
                    LogprobsComputer.LogSoftmax(rowLogits, raw);
                }
                LogitsProcessors.Apply(rowLogits, req, req.BadWordsTokenIds);
                int token = Sampler.Sample(rowLogits, req.Params, req.Rng);
                sampled[req.RequestId] = token;
                if (raw != null)
                    logprobs[req.RequestId] = LogprobsComputer.Describe(raw, token, req.Params.Logprobs!.Value);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Sampling reads only this request's row and state: a failure here is this request's alone.
                failed[req.RequestId] = e;
                sampled.Remove(req.RequestId);
            }
        }
        return new ModelRunnerOutput(sampled, logprobs, promptLogprobs) { Failed = failed };
    }

    private bool Guard(Engine.FaultSite site, string requestId, Dictionary<string, Exception> failed)
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

    private static bool WantsPromptLogprobs(ScheduledRequest s) =>
        s.Request.Params.PromptLogprobs != null && s.Request.NumComputedTokens < s.Request.PromptTokenIds.Length - 1;
}
