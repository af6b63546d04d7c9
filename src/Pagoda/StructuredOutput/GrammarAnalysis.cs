namespace Pagoda.StructuredOutput;

/// <summary>
/// Checks and cleans the rule DFAs before they become a <see cref="PdaTables"/>: removes moves into states
/// that can never finish (so every live state can be completed, which the token masks rely on), and rejects
/// left recursion (a rule reaching itself without consuming a byte), which the pushdown runtime would
/// otherwise expand forever.
/// </summary>
internal static class GrammarAnalysis
{
    public static void Run(List<List<DfaNode>> rules, int root, IReadOnlyList<string> names, CompileBudget budget)
    {
        var productive = new bool[rules.Count];
        var live = rules.Select(r => new bool[r.Count]).ToArray();
        Fixpoint(rules, budget, (r, n, node) => node.Final
            || node.Ranges.Any(m => live[r][m.Target])
            || node.Calls.Any(c => productive[c.Rule] && live[r][c.Target]),
            live, () => { for (int r = 0; r < rules.Count; r++) productive[r] = live[r][0]; });
        if (!productive[root]) throw new GrammarException("the grammar matches no string at all");
        for (int r = 0; r < rules.Count; r++)
        {
            foreach (var node in rules[r])
            {
                node.Ranges.RemoveAll(m => !live[r][m.Target]);
                node.Calls.RemoveAll(c => !productive[c.Rule] || !live[r][c.Target]);
            }
        }

        var nullable = new bool[rules.Count];
        var reachesEnd = rules.Select(r => new bool[r.Count]).ToArray();
        Fixpoint(rules, budget, (r, n, node) => node.Final || node.Calls.Any(c => nullable[c.Rule] && reachesEnd[r][c.Target]),
            reachesEnd, () => { for (int r = 0; r < rules.Count; r++) nullable[r] = reachesEnd[r][0]; });
        RejectLeftRecursion(rules, nullable, names);
    }

    // Repeats passes (last node first, since moves mostly go forward) until nothing changes.
    private static void Fixpoint(List<List<DfaNode>> rules, CompileBudget budget, Func<int, int, DfaNode, bool> rule,
        bool[][] value, Action afterPass)
    {
        bool changed = true;
        while (changed)
        {
            budget.CheckTime();
            changed = false;
            for (int r = 0; r < rules.Count; r++)
            {
                for (int n = rules[r].Count - 1; n >= 0; n--)
                {
                    if (value[r][n] || !rule(r, n, rules[r][n])) continue;
                    value[r][n] = true;
                    changed = true;
                }
            }
            afterPass();
        }
    }

    private static void RejectLeftRecursion(List<List<DfaNode>> rules, bool[] nullable, IReadOnlyList<string> names)
    {
        // leftCalls[r]: rules r can call before consuming any byte.
        var leftCalls = new List<int>[rules.Count];
        for (int r = 0; r < rules.Count; r++)
        {
            var seen = new HashSet<int> { 0 };
            var work = new Stack<int>();
            work.Push(0);
            var callees = new HashSet<int>();
            while (work.Count > 0)
            {
                foreach (var (callee, target) in rules[r][work.Pop()].Calls)
                {
                    callees.Add(callee);
                    if (nullable[callee] && seen.Add(target)) work.Push(target);
                }
            }
            leftCalls[r] = callees.ToList();
        }
        // Iterative three-colour DFS: grey on the path, black when done.
        var color = new byte[rules.Count];
        for (int s = 0; s < rules.Count; s++)
        {
            if (color[s] != 0) continue;
            var path = new Stack<(int Rule, int Next)>();
            path.Push((s, 0));
            color[s] = 1;
            while (path.Count > 0)
            {
                var (r, i) = path.Pop();
                if (i == leftCalls[r].Count) { color[r] = 2; continue; }
                path.Push((r, i + 1));
                int c = leftCalls[r][i];
                if (color[c] == 1)
                    throw new GrammarException($"left recursion through rule '{names[c]}' is not supported; rewrite it with repetition");
                if (color[c] == 0) { color[c] = 1; path.Push((c, 0)); }
            }
        }
    }
}
