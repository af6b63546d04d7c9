using System.Runtime.CompilerServices;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.SpecDecode;

/// <summary>
/// Speculative decoding's side of the engine loop: after each step it records what was accepted and what the step
/// cost, then gives each request that sampled its drafts for the next step. How many drafts a request gets adapts:
/// draft j of a request whose drafts are accepted at rate α is worth α^j expected tokens, and drafts are added, the
/// most valuable first, while they raise the expected tokens per second of the next step under the fitted step cost
/// (<see cref="StepCostModel"/>). A request whose proposals are rarely accepted gets none, and its estimate drifts back
/// to the prior while it gets none, so it is tried again later.
/// </summary>
public sealed class SpecDecoder
{
    private const double PriorWeight = 2, Forget = 0.97;
    // A draft must promise this much more than it costs: the step cost and acceptance are estimates, and a wrong
    // yes costs more than a wrong no (measured at 16 running requests: without it, drafts at 67% acceptance made the
    // batch 8-14% slower).
    private const double Margin = 1.25;
    private readonly SpeculativeConfig _config;
    private readonly int _maxModelLen;
    private readonly NgramProposer? _ngram;
    private readonly ConditionalWeakTable<Request, Acceptance> _acceptance = [];
    private readonly long[] _acceptedPerPos;
    private long _drafts, _draftTokens, _accepted;
    private double _globalAccepted = 1, _globalTrials = 2;   // the prior for requests without trials: starts at 0.5

    /// <summary>Proposes with prompt lookup (n-gram), or chooses lengths for a draft model's proposals.</summary>
    public SpecDecoder(SpeculativeConfig config, int maxModelLen)
    {
        _config = config;
        _maxModelLen = maxModelLen;
        _ngram = config.UsesDraftModel ? null : new NgramProposer(config.PromptLookupMin, config.PromptLookupMax);
        _acceptedPerPos = new long[config.NumSpeculativeTokens];
    }

    /// <summary>The configuration.</summary>
    public SpeculativeConfig Config => _config;

    /// <summary>The step cost the proposal lengths are chosen against.</summary>
    public StepCostModel Cost { get; } = new();

    /// <summary>Seconds of one draft-model forward (an exponential average; 0 for n-gram, whose proposals cost nothing measurable).</summary>
    public double DraftForwardSeconds { get; private set; }

    /// <summary>Records a draft model's proposals: <paramref name="forwards"/> forwards in <paramref name="seconds"/>.</summary>
    public void RecordDraftForwards(int forwards, double seconds)
    {
        if (forwards > 0)
            DraftForwardSeconds = DraftForwardSeconds == 0 ? seconds / forwards : 0.9 * DraftForwardSeconds + 0.1 * seconds / forwards;
    }

    /// <summary>The counters since start.</summary>
    public SpecDecodingStats Stats => new(_config.NumSpeculativeTokens, _drafts, _draftTokens, _accepted, [.. _acceptedPerPos]);

    /// <summary>
    /// Records a step before the scheduler does: each verification's accepted drafts (the tokens sampled before the
    /// last one), and, for a step of decodes only, its time against its tokens.
    /// </summary>
    public void RecordStep(SchedulerOutput step, IReadOnlyDictionary<string, int[]> sampled, double seconds)
    {
        bool decodeOnly = step.Scheduled.Count > 0;
        foreach (var s in step.Scheduled)
        {
            decodeOnly &= s.SamplesToken && s.NumTokens == 1 + s.SpecTokenIds.Length;
            if (s.SpecTokenIds.Length == 0 || !sampled.TryGetValue(s.Request.RequestId, out var tokens))
                continue;
            int accepted = tokens.Length - 1;
            _drafts++;
            _draftTokens += s.SpecTokenIds.Length;
            _accepted += accepted;
            for (int j = 0; j < accepted; j++)
                _acceptedPerPos[j]++;
            // Draws until the first rejection: accepted successes out of accepted + 1 trials, or all of them accepted.
            int trials = accepted + (accepted < s.SpecTokenIds.Length ? 1 : 0);
            _acceptance.GetOrCreateValue(s.Request).Add(accepted, trials);
            (_globalAccepted, _globalTrials) = (Forget * _globalAccepted + accepted, Forget * _globalTrials + trials);
        }
        if (decodeOnly)
            Cost.Record(step.TotalTokens, seconds);
    }

    /// <summary>
    /// Sets the next step's n-gram drafts of <paramref name="sampledRequests"/> (those that sampled and still run), with
    /// <paramref name="numRunning"/> requests running in all; with a draft model, returns how many drafts each should get
    /// from it instead.
    /// </summary>
    public IReadOnlyList<(Request Request, int NumDrafts)> Propose(IReadOnlyList<Request> sampledRequests, int numRunning)
    {
        var wanted = new List<(Request, int)>();
        if (_config.DisableByBatchSize is int limit && numRunning >= limit)
            return wanted;
        double prior = _globalAccepted / _globalTrials;
        var candidates = new List<(Request Request, int[] Drafts, double Alpha)>();
        foreach (var req in sampledRequests)
        {
            var acceptance = _acceptance.GetOrCreateValue(req);
            double alpha = acceptance.Estimate(prior);
            acceptance.Decay();
            // Grammar-constrained requests are not speculated (drafts would have to walk the grammar too).
            int k = Math.Min(_config.NumSpeculativeTokens, Math.Min(req.MaxTokens - req.NumOutputTokens - 1, _maxModelLen - req.NumTokens));
            if (k <= 0 || req.Grammar != null)
                continue;
            var drafts = _ngram != null ? _ngram.Propose(req.AllTokenIdSpan, k) : new int[k];
            if (drafts.Length > 0)
                candidates.Add((req, drafts, alpha));
        }
        if (candidates.Count == 0)
            return wanted;
        var lengths = _config.AdaptiveLengths
            ? ChooseLengths(candidates.Select(c => (c.Drafts.Length, c.Alpha)).ToList(), numRunning)
            : candidates.Select(c => c.Drafts.Length).ToArray();
        for (int i = 0; i < candidates.Count; i++)
        {
            if (lengths[i] == 0)
                continue;
            if (_ngram != null)
                candidates[i].Request.SpecTokenIds = candidates[i].Drafts[..lengths[i]];
            else
                wanted.Add((candidates[i].Request, lengths[i]));
        }
        return wanted;
    }

    /// <summary>
    /// Each candidate's draft count, position by position: draft j of a request is worth α^j expected tokens and costs
    /// b (its verification); a position costs a draft-model forward besides (none for n-gram). A position is added while
    /// it raises expected tokens per second by a margin, V / C &gt; 1.25 G / T, with the requests whose draft there pays for
    /// its own verification by the same margin; G and T start from one token per running request.
    /// </summary>
    internal int[] ChooseLengths(IReadOnlyList<(int MaxDrafts, double Alpha)> candidates, int numRunning)
    {
        var (a, b) = Cost.Fit() ?? (1.0, Cost.PriorRatio);
        double g = Math.Max(1, numRunning), t = a + b * g, f = DraftForwardSeconds;
        var lengths = new int[candidates.Count];
        var members = new List<int>();
        for (int j = 1; ; j++)
        {
            members.Clear();
            double value = 0;
            for (int i = 0; i < candidates.Count; i++)
            {
                double v = Math.Pow(candidates[i].Alpha, j);
                if (lengths[i] == j - 1 && candidates[i].MaxDrafts >= j && v * t > Margin * b * g)
                {
                    members.Add(i);
                    value += v;
                }
            }
            double cost = f + b * members.Count;
            if (members.Count == 0 || value * t <= Margin * cost * g)
                return lengths;
            (g, t) = (g + value, t + cost);
            foreach (int i in members)
                lengths[i] = j;
        }
    }

    // A request's drafts accepted out of draws, forgotten slowly, so that its estimate follows it and, without trials,
    // returns to the prior.
    private sealed class Acceptance
    {
        private double _accepted, _trials;

        public void Add(int accepted, int trials) => (_accepted, _trials) = (_accepted + accepted, _trials + trials);

        public void Decay() => (_accepted, _trials) = (Forget * _accepted, Forget * _trials);

        public double Estimate(double prior) => (_accepted + PriorWeight * prior) / (_trials + PriorWeight);
    }
}
