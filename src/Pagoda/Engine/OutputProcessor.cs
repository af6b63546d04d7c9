using Pagoda.Execution;
using Pagoda.Requests;
using Pagoda.Scheduling;
using Pagoda.Tokenization;

namespace Pagoda.Engine;

/// <summary>
/// The output side of a step: detokenizes new tokens incrementally, finds stop strings, gathers
/// logprobs and builds each prompt's <see cref="RequestOutput"/> (cumulative, delta or final-only).
/// </summary>
internal sealed class OutputProcessor(Tokenizer? tokenizer, FaultHook? faults = null)
{
    private readonly Dictionary<string, RequestState> _states = new();
    private readonly Dictionary<string, ParentRequest> _parents = new();

    public int NumUnfinished => _parents.Count;

    /// <summary>Registers a prompt and its child sequences (ids of the scheduler's requests).</summary>
    public void Add(ParentRequest parent, IReadOnlyList<Request> children)
    {
        parent.Children = children.Select((c, i) => new RequestState(c, parent, i,
            tokenizer == null ? null : new IncrementalDetokenizer(tokenizer, parent.PromptTokenIds, parent.Params.SkipSpecialTokens,
                parent.Params.SpacesBetweenSpecialTokens))).ToArray();
        _parents.Add(parent.RequestId, parent);
        foreach (var c in parent.Children)
            _states.Add(c.RequestId, c);
    }

    /// <summary>The scheduler's requests of a prompt, one per sequence (empty when unknown or finished).</summary>
    public IReadOnlyList<Request> Children(string parentId) =>
        _parents.TryGetValue(parentId, out var p) ? p.Children.Select(c => c.Request).ToArray() : [];

    /// <summary>The prompt a child sequence belongs to, if it is still known.</summary>
    public string? ParentOf(string childId) => _states.TryGetValue(childId, out var s) ? s.Parent.RequestId : null;

    /// <summary>Forgets an aborted prompt.</summary>
    public void Remove(string parentId)
    {
        if (!_parents.Remove(parentId, out var p))
            return;
        foreach (var c in p.Children)
            _states.Remove(c.RequestId);
    }

    /// <summary>
    /// Applies one step. Returns the outputs to emit, the requests a stop string ended (the engine tells the
    /// scheduler to free them) and the sequences whose detokenization threw (their prompts get no output;
    /// the engine fails them).
    /// </summary>
    public (List<RequestOutput> Outputs, List<Request> StoppedByString, Dictionary<string, Exception> Failed) Process(SchedulerOutput step,
        ModelRunnerOutput run)
    {
        var touched = new List<ParentRequest>();
        var stopped = new List<Request>();
        var failed = new Dictionary<string, Exception>();
        foreach (var s in step.Scheduled)
        {
            var req = s.Request;
            if (!_states.TryGetValue(req.RequestId, out var state))
                continue;
            var parent = state.Parent;
            if (run.PromptLogprobs.Count > 0 && run.PromptLogprobs.TryGetValue(req.RequestId, out var chunk)
                && parent.PromptLogprobs is { } plp)
            {
                // After a preemption the prompt is recomputed; positions already recorded are skipped.
                for (int k = 0; k < chunk.Entries.Count; k++)
                {
                    if (chunk.FirstPosition + k == plp.Count)
                        plp.Add(chunk.Entries[k]);
                }
            }
            if (!run.SampledTokens.TryGetValue(req.RequestId, out int[]? tokens))
                continue;
            try
            {
                faults?.Invoke(FaultSite.Detokenizer, req.RequestId);
                var lps = run.Logprobs.Count > 0 ? run.Logprobs.GetValueOrDefault(req.RequestId) : null;
                // The tokens the scheduler appended: after one that ends the request, a step's accepted drafts are dropped.
                int take = Math.Min(tokens.Length, req.NumOutputTokens - state.TokenIds.Count);
                for (int i = 0; i < take && !state.IsFinished; i++)
                    AppendToken(state, req, tokens[i], lps?[i]);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Detokenizer and stop-string state are per sequence: only this prompt is lost.
                failed[req.RequestId] = e;
                continue;
            }
            if (state.IsFinished && !req.IsFinished)
                stopped.Add(req);
            if (!parent.Touched)
            {
                parent.Touched = true;
                touched.Add(parent);
            }
        }

        var outputs = new List<RequestOutput>();
        foreach (var parent in touched)
        {
            parent.Touched = false;
            if (failed.Count > 0 && parent.Children.Any(c => failed.ContainsKey(c.RequestId)))
                continue;
            if (MakeOutput(parent) is { } o)
                outputs.Add(o);
            if (parent.IsFinished)
                Remove(parent.RequestId);
        }
        return (outputs, stopped, failed);
    }

    private static void AppendToken(RequestState state, Request req, int token, TokenLogprob? logprob)
    {
        state.TokenIds.Add(token);
        if (logprob != null)
        {
            state.Logprobs!.Add(logprob);
            state.CumulativeLogprob += logprob.Logprob;
        }
        // A stop token ends the sequence without entering the text.
        bool stopToken = req.Status == RequestStatus.FinishedStopped && req.NumOutputTokens == state.TokenIds.Count;
        if (!stopToken)
        {
            // Without a tokenizer (--skip-tokenizer-init) outputs carry token ids only.
            string delta = state.Detokenizer?.Push(token) ?? "";
            state.Text.Append(delta);
            if (StopStrings.Find(state.Text, delta.Length, state.Params) is var (cut, stop) && stop != null)
            {
                state.Text.Length = cut;
                state.FinishReason = "stop";
                state.StopReason = stop;
                return;
            }
        }
        // The request's status is the step's last token's: a token before it in the same step did not end it.
        if (req.IsFinished && state.TokenIds.Count == req.NumOutputTokens)
        {
            state.FinishReason = req.FinishReason;
            state.StopReason = req.StopReason;
        }
    }

    private static RequestOutput? MakeOutput(ParentRequest parent)
    {
        var p = parent.Params;
        bool finished = parent.IsFinished;
        if (p.OutputKind == RequestOutputKind.FinalOnly && !finished)
            return null;
        bool delta = p.OutputKind == RequestOutputKind.Delta;
        var completions = new List<CompletionOutput>();
        foreach (var c in parent.Children)
        {
            // Hold back text that may still turn out to be the start of a stop string.
            int visible = c.IsFinished ? c.TextLength : Math.Max(c.SentTextLength, c.TextLength - StopStrings.HoldBack(p));
            if (delta && visible == c.SentTextLength && c.TokenIds.Count == c.SentTokens && (!c.IsFinished || c.FinishSent))
                continue;
            // Token ids and logprobs are snapshots of lists that only grow, so cumulative outputs copy nothing.
            completions.Add(new CompletionOutput(
                c.Index,
                c.TextRange(delta ? c.SentTextLength : 0, visible),
                c.TokenIds.Window(delta ? c.SentTokens : 0),
                c.Logprobs != null ? c.CumulativeLogprob : null,
                c.Logprobs?.Window(delta ? c.SentLogprobs : 0),
                c.FinishReason,
                c.StopReason));
            c.SentTextLength = visible;
            c.SentTokens = c.TokenIds.Count;
            c.SentLogprobs = c.Logprobs?.Count ?? 0;
            c.FinishSent = c.IsFinished;
        }
        if (delta && completions.Count == 0 && !finished)
            return null;
        IReadOnlyList<TokenLogprob?>? promptLogprobs = parent.PromptLogprobs;
        if (delta && parent.PromptLogprobsSent)
            promptLogprobs = null;
        parent.PromptLogprobsSent = true;
        return new RequestOutput(parent.RequestId, parent.Prompt, parent.PromptTokenIds, promptLogprobs?.ToArray(),
            completions, finished);
    }
}
