namespace Pagoda.StructuredOutput;

/// <summary>
/// The pushdown automaton of a compiled grammar: every rule's DFA numbered into one node space, in flat
/// arrays. A node has byte ranges (sorted, disjoint), calls (push the callee's start, return to a node of
/// this rule) and a final flag (the rule may end here: pop). Immutable after construction.
/// </summary>
internal sealed class PdaTables
{
    private readonly int[] _rangeStart;
    private readonly byte[] _lo, _hi;
    private readonly int[] _rangeTarget;
    private readonly int[] _callStart;
    private readonly int[] _callRule, _callTarget;
    private readonly bool[] _final;
    private readonly bool[] _plain;

    public PdaTables(IReadOnlyList<List<DfaNode>> rules, int rootRule)
    {
        RuleStart = new int[rules.Count];
        var all = new List<DfaNode>();
        for (int r = 0; r < rules.Count; r++) { RuleStart[r] = all.Count; all.AddRange(rules[r]); }
        int n = all.Count;
        NodeCount = n;
        RootRule = rootRule;
        _rangeStart = new int[n + 1];
        _callStart = new int[n + 1];
        _final = new bool[n];
        _plain = new bool[n];
        int ranges = 0, calls = 0;
        foreach (var node in all) { ranges += node.Ranges.Count; calls += node.Calls.Count; }
        _lo = new byte[ranges]; _hi = new byte[ranges]; _rangeTarget = new int[ranges];
        _callRule = new int[calls]; _callTarget = new int[calls];
        int ri = 0, ci = 0;
        for (int i = 0, r = 0; i < n; i++)
        {
            while (r + 1 < rules.Count && RuleStart[r + 1] <= i) r++;
            int offset = RuleStart[r];
            var node = all[i];
            _rangeStart[i] = ri;
            foreach (var (lo, hi, t) in node.Ranges) { _lo[ri] = lo; _hi[ri] = hi; _rangeTarget[ri++] = t + offset; }
            _callStart[i] = ci;
            foreach (var (rule, t) in node.Calls) { _callRule[ci] = rule; _callTarget[ci++] = t + offset; }
            _final[i] = node.Final;
            _plain[i] = !node.Final && node.Calls.Count == 0;
        }
        _rangeStart[n] = ri;
        _callStart[n] = ci;
    }

    public int NodeCount { get; }

    public int RootRule { get; }

    /// <summary>Start node of each rule.</summary>
    public int[] RuleStart { get; }

    public bool IsFinal(int node) => _final[node];

    /// <summary>Neither final nor calling: after a byte into such a node, no closure work is needed.</summary>
    public bool IsPlain(int node) => _plain[node];

    public bool HasBytes(int node) => _rangeStart[node + 1] > _rangeStart[node];

    public int CallCount(int node) => _callStart[node + 1] - _callStart[node];

    public (int Rule, int Target) CallAt(int node, int i) => (_callRule[_callStart[node] + i], _callTarget[_callStart[node] + i]);

    public int RangeCount(int node) => _rangeStart[node + 1] - _rangeStart[node];

    public (byte Lo, byte Hi, int Target) RangeAt(int node, int i)
    {
        int k = _rangeStart[node] + i;
        return (_lo[k], _hi[k], _rangeTarget[k]);
    }

    /// <summary>The node reached from <paramref name="node"/> on byte <paramref name="b"/>, or -1.</summary>
    public int Next(int node, byte b)
    {
        int lo = _rangeStart[node], hi = _rangeStart[node + 1] - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (b < _lo[mid]) hi = mid - 1;
            else if (b > _hi[mid]) lo = mid + 1;
            else return _rangeTarget[mid];
        }
        return -1;
    }
}
