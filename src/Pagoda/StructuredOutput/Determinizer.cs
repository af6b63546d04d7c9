namespace Pagoda.StructuredOutput;

/// <summary>One DFA state of a rule: disjoint sorted byte ranges, calls (rule, return state), and finality.</summary>
internal sealed class DfaNode
{
    public List<(byte Lo, byte Hi, int Target)> Ranges { get; } = [];
    public List<(int Rule, int Target)> Calls { get; } = [];
    public bool Final { get; set; }
}

/// <summary>
/// Subset construction of a rule's NFA into a DFA whose alphabet is bytes plus "call rule R" symbols. Byte
/// moves become deterministic; only the choice between a byte and a call (or between calls) is left to the
/// pushdown runtime. States are sets of the NFA states that have a non-epsilon edge (or are final).
/// </summary>
internal static class Determinizer
{
    public static List<DfaNode> Build(Nfa nfa, CompileBudget budget)
    {
        var ids = new Dictionary<int[], int>(IntArrayComparer.Instance);
        var sets = new List<int[]>();
        var nodes = new List<DfaNode>();
        var stamp = new int[nfa.StateCount];
        int stampGen = 0;
        var stack = new Stack<int>();

        int IdOf(List<int> seeds)
        {
            var set = Closure(seeds);
            if (ids.TryGetValue(set, out int id)) return id;
            budget.AddStates(1);
            id = nodes.Count;
            ids[set] = id;
            sets.Add(set);
            nodes.Add(new DfaNode());
            return id;
        }

        int[] Closure(List<int> seeds)
        {
            stampGen++;
            var members = new List<int>();
            foreach (int s in seeds) { if (stamp[s] != stampGen) { stamp[s] = stampGen; stack.Push(s); } }
            while (stack.Count > 0)
            {
                int s = stack.Pop();
                bool important = s == nfa.Final;
                for (int e = nfa.FirstEdge(s); e >= 0;)
                {
                    var (target, lo, _, next) = nfa.Edge(e);
                    if (lo == Nfa.Epsilon) { if (stamp[target] != stampGen) { stamp[target] = stampGen; stack.Push(target); } }
                    else important = true;
                    e = next;
                }
                if (important) members.Add(s);
            }
            members.Sort();
            return members.ToArray();
        }

        IdOf([nfa.Start]);
        var points = new List<int>();
        var byteEdges = new List<(int Lo, int Hi, int Target)>();
        var calls = new SortedDictionary<int, List<int>>();
        for (int d = 0; d < nodes.Count; d++)
        {
            if ((d & 255) == 0) budget.CheckTime();
            var node = nodes[d];
            byteEdges.Clear();
            calls.Clear();
            foreach (int s in sets[d])
            {
                if (s == nfa.Final) node.Final = true;
                for (int e = nfa.FirstEdge(s); e >= 0;)
                {
                    var (target, lo, hi, next) = nfa.Edge(e);
                    if (lo == Nfa.Call)
                    {
                        if (!calls.TryGetValue(hi, out var list)) calls[hi] = list = [];
                        list.Add(target);
                    }
                    else if (lo >= 0) byteEdges.Add((lo, hi, target));
                    e = next;
                }
            }
            foreach (var (rule, targets) in calls) node.Calls.Add((rule, IdOf(targets)));
            AddByteMoves(node, byteEdges, points, IdOf);
        }
        return nodes;
    }

    // Cuts 0..255 at every edge boundary; each elementary interval moves to the closure of the edges that
    // cover it. Adjacent intervals with the same target merge back into one range.
    private static void AddByteMoves(DfaNode node, List<(int Lo, int Hi, int Target)> edges, List<int> points,
        Func<List<int>, int> idOf)
    {
        if (edges.Count == 0) return;
        points.Clear();
        foreach (var (lo, hi, _) in edges) { points.Add(lo); points.Add(hi + 1); }
        points.Sort();
        int w = 0;
        for (int i = 0; i < points.Count; i++) if (w == 0 || points[i] != points[w - 1]) points[w++] = points[i];
        points.RemoveRange(w, points.Count - w);
        var targets = new List<int>[points.Count - 1];
        foreach (var (lo, hi, target) in edges)
        {
            int i = points.BinarySearch(lo);
            for (; i < targets.Length && points[i] <= hi; i++) (targets[i] ??= []).Add(target);
        }
        for (int i = 0; i < targets.Length; i++)
        {
            if (targets[i] is null) continue;
            int to = idOf(targets[i]);
            byte lo = (byte)points[i], hi = (byte)(points[i + 1] - 1);
            var r = node.Ranges;
            if (r.Count > 0 && r[^1].Target == to && r[^1].Hi + 1 == lo) r[^1] = (r[^1].Lo, hi, to);
            else r.Add((lo, hi, to));
        }
    }
}

/// <summary>Content equality for state sets used as dictionary keys.</summary>
internal sealed class IntArrayComparer : IEqualityComparer<int[]>
{
    public static readonly IntArrayComparer Instance = new();

    public bool Equals(int[]? a, int[]? b) => a.AsSpan().SequenceEqual(b);

    public int GetHashCode(int[] a)
    {
        var h = new HashCode();
        h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
        return h.ToHashCode();
    }
}
